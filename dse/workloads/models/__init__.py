"""Workload generators, one module per model family; importing a module registers its
generators. :func:`load` imports the module that holds a name (a ResNet-50 run does not
build the transformer models' dataclasses), or all of them."""
from __future__ import annotations

import importlib

#: generator name -> module of this package that registers it (a test checks it against
#: what the modules register)
MODULES = {
    "bert": "bert", "bert-base": "bert", "bert-large": "bert", "dlrm": "dlrm", "gemm": "gemm",
    "gpt": "gpt", "llm": "llm", "lstm": "lstm", "mlp": "mlp", "mobilenetv2": "mobilenet",
    "moe": "moe", "resnet50": "resnet",
}


def load(name: str | None = None) -> None:
    """Register generator ``name`` (every generator when ``name`` is None or unknown, so
    that an error can list them all)."""
    modules = [MODULES[name]] if name in MODULES else sorted(set(MODULES.values()))
    for module in modules:
        importlib.import_module(f"{__name__}.{module}")

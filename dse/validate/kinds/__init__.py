"""Registry of validation-case kinds: one module per kind, chosen by the case's ``kind:``.

A kind module defines ``Case`` (a pydantic model extending ``case.CaseBase`` with the
fields that configure it), ``METRICS`` (metric name -> dimension of its unit strings, or the
unit label of a plain number) and ``evaluate(case, base_dir) -> float`` (dse's value of the
case's metric, in SI). Adding a kind (``collective``, ``serving``) is one module and one
line here.
"""
from __future__ import annotations

import importlib
from types import ModuleType

#: kind name -> module implementing it
KINDS: dict[str, str] = {
    "workload": "dse.validate.kinds.workload",
    "memory": "dse.validate.kinds.memory",
    "collective": "dse.validate.kinds.collective",
    "serving": "dse.validate.kinds.serving",
}


def kind_module(name: str) -> ModuleType:
    """The module of a registered kind (KeyError for an unknown one)."""
    return importlib.import_module(KINDS[name])

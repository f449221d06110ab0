"""Workloads: DAGs of ops from generators (``resnet50``, ``gpt:phase=decode``), trace
files (.yaml/.json) or ONNX models, and their op tables.

A workload spec is ``name`` or ``name:key=value,key=value`` (values read as
int, float, true/false or text; lists such as MLP widths as ``1024-4096-1024``),
or a path to a trace or .onnx file. Every generator also takes ``precision`` and
``train=true`` (one training step: forward, backward at 2x forward MACs, Adam).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from dse.errors import SpecError
from dse.paths import is_file
from dse.workloads import models as _models
from dse.workloads.builder import check_precision
from dse.workloads.ops import Op, Workload, check_sizes
from dse.workloads.registry import GeneratorInfo, build, generators, parse_spec
from dse.workloads.table import op_table
from dse.workloads.training import training_workload

__all__ = ["GeneratorInfo", "Op", "Workload", "WorkloadImportWarning", "list_generators",
           "load_trace", "load_workload", "op_table", "parse_trace", "training_workload"]

TRACE_SUFFIXES = (".yaml", ".yml", ".json")


class WorkloadImportWarning(UserWarning):
    """Part of an imported model could not be mapped to ops (e.g. unsupported ONNX op types)."""


#: ``name:key=value...``: a generator spec, even where a value is a path (``llm:model=cfg.json``)
_GENERATOR_SPEC = re.compile(r"[A-Za-z0-9_.-]+:[A-Za-z_][A-Za-z0-9_]*=")


def _looks_like_path(spec: str) -> bool:
    if is_file(spec):
        return True
    if _GENERATOR_SPEC.match(spec):
        return False
    return spec.lower().endswith((*TRACE_SUFFIXES, ".onnx")) or os.sep in spec or "/" in spec


def load_workload(spec: str, *, batch: int | None = None, precision: str | None = None) -> Workload:
    """Build the workload named by ``spec`` (generator name with parameters, or file path).

    ``batch`` overrides a generator's batch (or an ONNX model's symbolic batch
    dimension); ``precision`` overrides the precision of every op.
    """
    if precision is not None:
        check_precision(precision)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0):
        raise SpecError(f"batch must be a positive integer, got {batch!r}", field="batch")
    if _looks_like_path(spec):
        path = Path(spec)
        suffix = path.suffix.lower()
        if not is_file(path):
            raise SpecError("file not found", where=spec)
        if suffix == ".onnx":
            from dse.workloads.onnx_import import load_onnx
            w = load_onnx(path, batch=batch, precision=precision)
            check_sizes(w)
            return w
        if suffix not in TRACE_SUFFIXES:
            raise SpecError("unknown workload file type (expected .yaml, .yml, .json or .onnx)",
                            where=spec)
        if batch is not None:
            raise SpecError("a trace file has fixed shapes; batch cannot be overridden", where=spec)
        from dse.workloads.trace import load_trace

        return load_trace(path, precision=precision)
    w = _generated(spec, batch, precision)
    check_sizes(w)
    return w


def _generated(spec: str, batch: int | None, precision: str | None) -> Workload:
    name, params = parse_spec(spec)
    _models.load(name)
    known = generators()
    if name in known:
        if batch is not None:
            if "batch" in known[name].params:
                params["batch"] = batch
            elif "tokens" in known[name].params:
                params["tokens"] = batch
            else:
                raise SpecError(f"workload {name} has no batch parameter "
                                f"(its parameters: {', '.join(known[name].params)})", field="batch")
        if precision is not None:
            params["precision"] = precision
    return build(name, params)


def list_generators() -> list[GeneratorInfo]:
    """Every generator with its one-line description and parameters (with defaults), by name."""
    _models.load()
    return [generators()[n] for n in sorted(generators())]


def __getattr__(name: str):
    # trace files are read by their own module (pydantic models), imported on first use
    if name in ("load_trace", "parse_trace"):
        from dse.workloads import trace

        return getattr(trace, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

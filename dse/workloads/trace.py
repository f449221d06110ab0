"""Workload trace files: a DAG of ops in YAML or JSON, validated with pydantic.

The format is documented in trace_format.md. Errors name the file, the line of
the offending YAML node and the field path (``ops[3].m``).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dse.errors import SpecError
from dse.workloads.dag import DagError, topological_order
from dse.workloads.ops import PRECISION_BYTES, Op, Workload, op_size_problem

Role = Literal["weights", "activations", "kv_cache", "embeddings", "optimizer_state", "gradients"]
Precision = Literal[tuple(PRECISION_BYTES)]  # type: ignore[valid-type]
#: Largest size of one dimension of an op (2^40 elements); totals are checked by
#: ``dse.workloads.ops.check_sizes``.
MAX_DIM = 2**40
Positive = Annotated[int, Field(strict=True, gt=0, le=MAX_DIM)]
NonNegative = Annotated[int, Field(strict=True, ge=0, le=MAX_DIM)]
KINDS = ("matmul", "conv2d", "vector")


class _OpSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, defer_build=True)

    name: Annotated[str, Field(min_length=1)]
    precision: Precision | None = None
    deps: list[str] = []
    tag: str = ""


class MatmulSpec(_OpSpec):
    """out[m,n] = a[m,k] @ b[k,n], ``count`` times."""

    kind: Literal["matmul"]
    m: Positive
    n: Positive
    k: Positive
    count: Positive = 1
    a_role: Role = "activations"
    b_role: Role = "weights"
    out_role: Role = "activations"


class Conv2dSpec(_OpSpec):
    """NCHW convolution."""

    kind: Literal["conv2d"]
    batch: Positive = 1
    in_channels: Positive
    out_channels: Positive
    height: Positive
    width: Positive
    kernel_h: Positive = 1
    kernel_w: Positive = 1
    stride: Positive = 1
    padding: NonNegative = 0
    groups: Positive = 1
    a_role: Role = "activations"
    b_role: Role = "weights"
    out_role: Role = "activations"


class VectorSpec(_OpSpec):
    """Element-wise or gather op."""

    kind: Literal["vector"]
    elements: Positive
    ops_per_element: Annotated[float, Field(ge=0, le=MAX_DIM)] = 1.0
    inputs: Positive = 1
    in_role: Role = "activations"
    out_role: Role = "activations"
    pattern: Literal["sequential", "random"] = "sequential"
    access_bytes: NonNegative = 0


OpSpec = Annotated[Union[MatmulSpec, Conv2dSpec, VectorSpec], Field(discriminator="kind")]


class TraceSpec(BaseModel):
    """A whole trace file."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    samples: Positive = 1
    precision: Precision = "int8"
    ops: Annotated[list[OpSpec], Field(min_length=1)]


# ---- YAML node positions -----------------------------------------------------

def _field_path(loc: tuple) -> list[str | int]:
    """Drop pydantic's discriminator tags from a loc: ('ops', 3, 'matmul', 'm') -> ['ops', 3, 'm']."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if part in KINDS and i > 0 and isinstance(loc[i - 1], int):
            continue
        out.append(part)
    return out


def _format_path(path: list[str | int]) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


def _parse_text(text: str, where: str, is_json: bool):
    """The file's data and a YamlDoc that finds lines when an error needs one."""
    from dse.spec.yaml_io import parse_json_text, parse_yaml_text

    doc = parse_json_text(text, where) if is_json else parse_yaml_text(text, where)
    return doc.data, doc


# ---- loading -------------------------------------------------------------------

def _to_op(spec: MatmulSpec | Conv2dSpec | VectorSpec, default_precision: str) -> Op:
    fields = dict(spec.__dict__)  # flat fields of plain values: no need for model_dump's deep copy
    fields["deps"] = tuple(fields["deps"])
    fields["precision"] = fields["precision"] or default_precision
    return Op(**fields)


def _check_geometry(op: Op) -> tuple[str, str] | None:
    """(field, message) if a conv's channels or sizes do not fit together."""
    if op.kind != "conv2d":
        return None
    for f in ("in_channels", "out_channels"):
        if getattr(op, f) % op.groups:
            return f, f"{f}={getattr(op, f)} is not divisible by groups={op.groups}"
    ho, wo = op.out_hw
    if ho <= 0 or wo <= 0:
        return "kernel_h", (f"kernel {op.kernel_h}x{op.kernel_w} does not fit a "
                            f"{op.height}x{op.width} input with padding {op.padding}")
    return None


def parse_trace(text: str, where: str = "<trace>", *, is_json: bool = False) -> Workload:
    """Validate a trace's text and build its Workload (ops in dependency order)."""
    data, doc = _parse_text(text, where, is_json)

    def fail(message: str, path: list[str | int]) -> SpecError:
        line = doc.line(tuple(path))
        return SpecError(message, where=f"{where}:{line}" if line else where,
                         field=_format_path(path) or None)

    if not isinstance(data, dict):
        raise fail("a trace file is a mapping with 'name' and 'ops'", [])
    try:
        spec = TraceSpec.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        err = errors[0]
        path = _field_path(err["loc"])
        if err["type"].startswith("union_tag"):
            path.append("kind")
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        raise fail(err["msg"][0].lower() + err["msg"][1:] + more, path) from None
    ops = [_to_op(o, spec.precision) for o in spec.ops]
    for i, op in enumerate(ops):
        bad = _check_geometry(op) or op_size_problem(op)
        if bad:
            raise fail(bad[1], ["ops", i, bad[0]])
    try:
        ordered = topological_order(ops)
    except DagError as e:
        path: list[str | int] = ["ops", e.index]
        if e.field.startswith("deps["):
            path += ["deps", int(e.field[5:-1])]
        else:
            path.append(e.field)
        raise fail(str(e), path) from None
    return Workload(name=spec.name, ops=ordered, samples=spec.samples,
                    params={"trace": where, "description": spec.description})


def load_trace(path: str | Path, *, precision: str | None = None) -> Workload:
    """Read a .yaml/.yml/.json trace file; ``precision`` overrides every op's precision."""
    from dse.spec.yaml_io import read_text

    p = Path(path)
    text = read_text(p, "trace file")
    wl = parse_trace(text, str(path), is_json=p.suffix.lower() == ".json")
    if precision is not None:
        wl = replace(wl, ops=[replace(op, precision=precision) for op in wl.ops])
    return wl

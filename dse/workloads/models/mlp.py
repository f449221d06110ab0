"""A multi-layer perceptron: fully connected layers, each followed by an activation."""
from __future__ import annotations

from dse.errors import SpecError
from dse.workloads.builder import Graph, check_positive
from dse.workloads.ops import Workload
from dse.workloads.registry import register

#: Vector ops per element of each activation function (exp/erf approximations
#: are counted as a handful of multiply-adds, as vector units evaluate them).
ACTIVATION_OPS: dict[str, float] = {"none": 0, "relu": 1, "gelu": 8, "sigmoid": 4, "tanh": 4, "silu": 5}


def parse_widths(widths: str | list[int], field: str = "widths") -> list[int]:
    """Read layer widths given as "1024-4096-1024" (or "1024x4096", or a list of ints)."""
    if isinstance(widths, int):
        widths = [widths]
    if isinstance(widths, str):
        parts = widths.replace("x", "-").replace(" ", "").split("-")
        try:
            widths = [int(p) for p in parts if p]
        except ValueError:
            raise SpecError(f"expected widths such as 1024-4096-1024, got {widths!r}",
                            field=field) from None
    widths = list(widths)
    if not widths or any((not isinstance(w, int)) or w <= 0 for w in widths):
        raise SpecError(f"widths must be positive integers, got {widths!r}", field=field)
    return widths


def add_mlp(g: Graph, prefix: str, widths: list[int], rows: int, activation: str,
            deps, *, last_activation: bool = True, tag: str = "mlp") -> str:
    """Append fully connected layers widths[0]→…→widths[-1] on ``rows`` inputs; return the last op."""
    ops_per = ACTIVATION_OPS[activation]
    last = deps
    for i, (w_in, w_out) in enumerate(zip(widths, widths[1:])):
        last = g.matmul(f"{prefix}fc{i}", m=rows, n=w_out, k=w_in, deps=last, tag=tag)
        is_last = i == len(widths) - 2
        if ops_per and (last_activation or not is_last):
            last = g.vector(f"{prefix}{activation}{i}", rows * w_out, deps=last,
                            ops_per_element=ops_per, tag=tag)
    return last


@register("mlp", "fully connected layers with an activation after each (widths like 1024-4096-1024)")
def mlp(widths: list[int] | str = "1024-4096-4096-1024", batch: int = 32, activation: str = "relu",
        precision: str = "int8") -> Workload:
    """An MLP on ``batch`` input vectors; ``samples`` = batch."""
    check_positive(batch=batch)
    ws = parse_widths(widths)
    if len(ws) < 2:
        raise SpecError("needs at least two widths (input and output)", field="widths")
    if activation not in ACTIVATION_OPS:
        raise SpecError(f"unknown activation {activation!r} (known: {', '.join(ACTIVATION_OPS)})",
                        field="activation")
    g = Graph(precision)
    add_mlp(g, "", ws, batch, activation, None)
    return g.workload("mlp", samples=batch)

"""A small helper that generators use to append ops to a DAG with unique names."""
from __future__ import annotations

from collections.abc import Iterable

from dse.errors import SpecError
from dse.workloads.ops import PRECISION_BYTES, Op, Workload

Deps = str | Iterable[str] | None

#: Most ops a generator may build (a parameter such as layers=10**12 would never finish).
MAX_OPS = 100_000


def check_precision(precision: str, *, field: str = "precision") -> str:
    """Return ``precision`` if dse knows its element size, else raise SpecError."""
    if precision not in PRECISION_BYTES:
        known = ", ".join(PRECISION_BYTES)
        raise SpecError(f"unknown precision {precision!r} (known: {known})", field=field)
    return precision


def check_positive(**values: int | float) -> None:
    """Raise SpecError naming the first parameter that is not > 0."""
    for name, value in values.items():
        if value is None or value <= 0:
            raise SpecError(f"must be positive, got {value!r}", field=name)


class Graph:
    """An append-only list of ops; each ``add`` returns the op's name for use as a dep."""

    def __init__(self, precision: str):
        self.precision = check_precision(precision)
        self.ops: list[Op] = []
        self._names: set[str] = set()

    def add(self, name: str, kind: str, deps: Deps = None, **fields) -> str:
        if len(self.ops) >= MAX_OPS:
            raise SpecError(f"the workload would have more than {MAX_OPS:,} ops (a parameter such as "
                            f"layers, seq or experts is too large)")
        if name in self._names:
            raise ValueError(f"duplicate op name {name!r}")  # a generator bug, not user input
        if deps is None:
            deps = ()
        elif isinstance(deps, str):
            deps = (deps,)
        fields.setdefault("precision", self.precision)
        self.ops.append(Op(name=name, kind=kind, deps=tuple(d for d in deps if d), **fields))
        self._names.add(name)
        return name

    def matmul(self, name: str, m: int, n: int, k: int, deps: Deps = None, **fields) -> str:
        return self.add(name, "matmul", deps, m=m, n=n, k=k, **fields)

    def conv(self, name: str, deps: Deps = None, **fields) -> str:
        return self.add(name, "conv2d", deps, **fields)

    def vector(self, name: str, elements: int, deps: Deps = None, **fields) -> str:
        return self.add(name, "vector", deps, elements=elements, **fields)

    def workload(self, name: str, samples: int, params: dict | None = None) -> Workload:
        return Workload(name=name, ops=list(self.ops), samples=samples, params=dict(params or {}))

"""Checks that a list of ops forms a DAG: unique names, known deps, no cycles."""
from __future__ import annotations

from collections.abc import Sequence

from dse.workloads.ops import Op


class DagError(ValueError):
    """A structural problem with the DAG; ``index`` is the offending op's position."""

    def __init__(self, message: str, index: int, field: str):
        super().__init__(message)
        self.index = index
        self.field = field


def topological_order(ops: Sequence[Op]) -> list[Op]:
    """Return ``ops`` in a dependency-respecting order, keeping the given order where it is one.

    Raises DagError on a duplicate name, an unknown dep or a cycle.
    """
    index: dict[str, int] = {}
    for i, op in enumerate(ops):
        if op.name in index:
            raise DagError(f"duplicate op name {op.name!r} (first used by ops[{index[op.name]}])",
                           i, "name")
        index[op.name] = i
    for i, op in enumerate(ops):
        for j, dep in enumerate(op.deps):
            if dep not in index:
                raise DagError(f"unknown dep {dep!r}", i, f"deps[{j}]")
    # Depth-first search, visiting ops in their given order, so that an already
    # topological list comes back unchanged.
    state = [0] * len(ops)  # 0 new, 1 on stack, 2 done
    out: list[Op] = []
    for root in range(len(ops)):
        if state[root]:
            continue
        stack = [(root, iter(ops[root].deps))]
        state[root] = 1
        while stack:
            i, it = stack[-1]
            dep = next(it, None)
            if dep is None:
                stack.pop()
                state[i] = 2
                out.append(ops[i])
                continue
            j = index[dep]
            if state[j] == 1:
                path = [ops[s].name for s, _ in stack]
                cycle = path[path.index(dep):] + [dep]
                raise DagError("dependency cycle: " + " -> ".join(cycle), j, "deps")
            if state[j] == 0:
                state[j] = 1
                stack.append((j, iter(ops[j].deps)))
    return out

"""Collectives as phases of flows over links, and their alpha-beta closed forms.

A collective over a group is a list of phases; in a phase every member sends ``bytes`` to
its neighbour on one axis (ring) after ``steps`` start-up latencies. The byte counts are
the textbook ones (Thakur, Rabenseifner and Gropp, "Optimization of collective
communication operations in MPICH", IJHPCA 2005; Patarasuk and Yuan, "Bandwidth optimal
all-reduce algorithms for clusters of workstations", JPDC 2009):

- ring all-reduce of S bytes over g members: 2(g-1) steps, 2(g-1) S/g bytes per member;
- ring reduce-scatter / all-gather (S = the full buffer): g-1 steps, (g-1) S/g bytes;
- hierarchical (2-D, torus) all-reduce: reduce-scatter along each axis in turn (the buffer
  shrinking by each axis' size), then all-gather back in reverse order;
- binomial-tree all-reduce: reduce then broadcast, 2 ceil(log2 g) steps of S bytes each;
- all-to-all (S = what one member holds, S/g to each other): on a switch g-1 steps of S/g;
  along a ring, the message to the member k hops away crosses k links: g(g-1)/2 steps,
  (g-1) S/2 bytes of link load per member;
- point to point: 1 step, S bytes.

Phases run on the SimPy network (``dse.system.network``), so concurrent collectives share
links. Uncontended, a phase takes steps x alpha + bytes / B: the alpha-beta model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from dse.errors import DesignError
from dse.system.topology import Axis

ALGORITHMS = ("ring", "tree", "hierarchical")
KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p")


@dataclass(frozen=True)
class Phase:
    axis: int            # index into the group's axes (-1: the flat group, slowest axis)
    steps: float         # start-up latencies
    bytes: float         # bytes each member sends
    pattern: str = "ring"   # ring | tree | all_to_all | p2p (how members pair up, full view)
    shared_fraction: float = 1.0   # of the represented members that load a shared switch


def _flat(axes: list[Axis]) -> tuple[int, int]:
    """(members of the whole group, index of its slowest axis)."""
    g = math.prod(a.size for a in axes)
    slowest = min(range(len(axes)), key=lambda i: axes[i].bandwidth_bps)
    return g, slowest


def phases(kind: str, nbytes: float, axes: list[Axis], algorithm: str = "auto",
           switched: bool = True) -> list[Phase]:
    """The phases of one collective of ``nbytes`` over a group lying on ``axes``."""
    if not axes or nbytes <= 0:
        return []
    if kind == "p2p":
        return [Phase(0, 1, nbytes, "p2p")]
    if algorithm == "auto":
        algorithm = "hierarchical" if len(axes) > 1 else "ring"
    if kind == "all_reduce" and algorithm == "tree":
        if not switched:
            raise DesignError("a tree all-reduce needs a switched or two-level topology "
                              "(on a ring or torus use ring or hierarchical)")
        g, slow = _flat(axes)
        rounds = 2 * math.ceil(math.log2(g))
        return [Phase(slow, rounds, rounds * nbytes, "tree", axes[slow].size / g)]
    if kind == "all_to_all":
        out = []
        for i, a in enumerate(axes):
            g = a.size
            if switched:
                out.append(Phase(i, g - 1, (g - 1) * nbytes / g, "all_to_all"))
            else:
                out.append(Phase(i, g * (g - 1) / 2, (g - 1) * nbytes / 2, "all_to_all"))
        return out
    if algorithm == "ring" and len(axes) > 1:
        g, slow = _flat(axes)
        frac = axes[slow].size / g
        if kind == "all_reduce":
            return [Phase(slow, 2 * (g - 1), 2 * (g - 1) * nbytes / g, "flat", frac)]
        return [Phase(slow, g - 1, (g - 1) * nbytes / g, "flat", frac)]
    # ring on one axis, or hierarchical over several
    rs, ag = [], []
    size = nbytes
    for i, a in enumerate(axes):
        g = a.size
        rs.append(Phase(i, g - 1, (g - 1) * size / g))
        size /= g
    for i in reversed(range(len(axes))):
        g = axes[i].size
        ag.append(Phase(i, g - 1, (g - 1) * size))
        size *= g
    if kind == "all_reduce":
        return rs + ag
    if kind == "reduce_scatter":
        return rs
    if kind == "all_gather":
        return _all_gather(axes, nbytes)
    raise DesignError(f"unknown collective '{kind}' (known: {', '.join(KINDS)})")


def _all_gather(axes: list[Axis], nbytes: float) -> list[Phase]:
    """All-gather of an ``nbytes`` result: the outermost (slowest) axis first, on the smallest
    pieces, then inward as the pieces grow (the mirror of the reduce-scatter)."""
    g_all = math.prod(a.size for a in axes)
    piece = nbytes / g_all
    out = []
    for i in reversed(range(len(axes))):
        a = axes[i]
        out.append(Phase(i, a.size - 1, (a.size - 1) * piece))
        piece *= a.size
    return out


def alpha_beta_s(kind: str, nbytes: float, axes: list[Axis], algorithm: str = "auto",
                 switched: bool = True) -> float:
    """The uncontended time of a collective: sum over phases of steps x alpha + bytes / B."""
    return sum(p.steps * axes[p.axis].latency_s + p.bytes / axes[p.axis].bandwidth_bps
               for p in phases(kind, nbytes, axes, algorithm, switched))

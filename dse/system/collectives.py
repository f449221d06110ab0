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
- binomial-tree all-reduce: reduce then broadcast, ceil(log2 g) rounds each; in reduce round
  r the members 2^r (mod 2^(r+1)) send S bytes to the member 2^r below them, so g-1 messages
  of S in all each way; a round whose pairs lie on one axis (sizes powers of two) uses only
  that axis' links;
- all-to-all (S = what one member holds, S/g to each other): on a switch g-1 steps of S/g;
  along a ring, the message to the member k hops away crosses k links: g(g-1)/2 steps,
  (g-1) S/2 bytes of link load per member;
- point to point: 1 step, S bytes.

Phases run on the SimPy network (``dse.system.network``), so concurrent collectives share
links. Uncontended, a phase takes steps x alpha + bytes / B: the alpha-beta model.

A phase whose members do not all send across the same axis (a tree round, a flat ring over
several axes) lists its ``parts``: each axis with the share of the members whose message
crosses it. The reduced view runs one weighted flow per part and charges each part's share,
so it moves the bytes and energy the full view moves member by member.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from dse.errors import DesignError
from dse.system.topology import Axis

ALGORITHMS = ("ring", "tree", "hierarchical")
KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p")


@dataclass(frozen=True)
class Phase:
    axis: int            # index into the group's axes: the one whose bandwidth bounds the phase
    steps: float         # start-up latencies
    bytes: float         # bytes each sending member sends
    pattern: str = "ring"   # ring | flat | tree | all_to_all | p2p (how members pair up, full view)
    #: (axis, share of the members whose message crosses it); empty: every member, on ``axis``
    parts: tuple[tuple[int, float], ...] = ()
    #: a message crosses every part's axis in turn (a torus route), not just one of them
    chained: bool = False
    distance: int = 0    # tree: members this far apart pair up; > 0 reduce, < 0 broadcast
    #: bytes each sending member sends, where ``bytes`` is the load it puts on its links
    #: instead (an all-to-all along a ring: messages cross several links); None: ``bytes``
    sends: float | None = None

    def shares(self) -> tuple[tuple[int, float], ...]:
        return self.parts or ((self.axis, 1.0),)

    def senders(self) -> float:
        """The share of the members that send a message in this phase."""
        return 1.0 if self.chained else sum(f for _, f in self.shares())

    def latency_s(self, axes: list[Axis]) -> float:
        """One step's start-up: the slowest route's (a chained route adds its axes')."""
        lat = [axes[i].latency_s for i, _ in self.shares()]
        return sum(lat) if self.chained else max(lat)

    def time_s(self, axes: list[Axis]) -> float:
        """Uncontended: steps x alpha + bytes over the slowest link crossed."""
        bw = min(axes[i].bandwidth_bps for i, _ in self.shares())
        return self.steps * self.latency_s(axes) + self.bytes / bw


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
        reduce = []
        for r, counts in enumerate(_tree_rounds(tuple(a.size for a in axes))):
            g = math.prod(a.size for a in axes)
            parts = tuple((i, c / g) for i, c in counts)
            slow = min((i for i, _ in parts), key=lambda i: axes[i].bandwidth_bps)
            reduce.append(Phase(slow, 1, nbytes, "tree", parts, distance=1 << r))
        return reduce + [replace(p, distance=-p.distance) for p in reversed(reduce)]
    if kind == "all_to_all":
        out = []
        for i, a in enumerate(axes):
            g = a.size
            if switched:
                out.append(Phase(i, g - 1, (g - 1) * nbytes / g, "all_to_all"))
            else:
                out.append(Phase(i, g * (g - 1) / 2, (g - 1) * nbytes / 2, "all_to_all",
                                 sends=(g - 1) * nbytes / g))
        return out
    if algorithm == "ring" and len(axes) > 1:
        g, slow = _flat(axes)
        parts = _flat_parts(axes, switched)
        if kind == "all_reduce":
            return [Phase(slow, 2 * (g - 1), 2 * (g - 1) * nbytes / g, "flat", parts, not switched)]
        return [Phase(slow, g - 1, (g - 1) * nbytes / g, "flat", parts, not switched)]
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


def _digit_changed(j: int, k: int, sizes: tuple[int, ...]) -> int:
    """The highest mixed-radix digit (first fastest) in which members j and k differ."""
    top = 0
    for i, n in enumerate(sizes):
        if j % n != k % n:
            top = i
        j //= n
        k //= n
    return top


@lru_cache(maxsize=256)
def _tree_rounds(sizes: tuple[int, ...]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per reduce round of a binomial tree over members numbered in mixed radix ``sizes``:
    (axis, pairs whose route crosses it); a pair crosses the highest axis whose digit differs
    (a switch level's route leaves by the highest level it must)."""
    g = math.prod(sizes)
    out = []
    for r in range(math.ceil(math.log2(g))):
        d = 1 << r
        counts: dict[int, int] = {}
        for j in range(d, g, 2 * d):
            i = _digit_changed(j, j - d, sizes)
            counts[i] = counts.get(i, 0) + 1
        out.append(tuple(sorted(counts.items())))
    return tuple(out)


def _flat_parts(axes: list[Axis], switched: bool) -> tuple[tuple[int, float], ...]:
    """A ring over all members in order (member j to j+1, the last to the first): the share
    of the members whose message crosses each axis. Digit i changes for 1/(product of the
    sizes below i) of them; through switch levels a message crosses only the highest axis
    whose digit changes, on a torus every such axis (one stretch of links each)."""
    out, below = [], 1.0
    for i, a in enumerate(axes):
        changes = 1.0 / below
        if switched and i < len(axes) - 1:
            changes *= (a.size - 1) / a.size   # and no higher digit: this digit does not wrap
        out.append((i, changes))
        below *= a.size
    return tuple(out)


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
    return sum(p.time_s(axes) for p in phases(kind, nbytes, axes, algorithm, switched))

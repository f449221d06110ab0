"""Running collectives on the SimPy network, in the reduced view (one representative chip
per role, its flows weighted by the chips it stands for) or the full view (every member
chip, its flows on the physical links between chips). Both charge energy and count bytes
per link type."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import simpy

from dse.system.collectives import Phase, phases
from dse.system.network import Network
from dse.system.topology import Axis, Topology


@dataclass
class Ledger:
    """What communication cost: energy, bytes per link type, time per chip in collectives."""

    energy_j: float = 0.0
    bytes_by_type: dict[str, float] = field(default_factory=dict)
    energy_by_type: dict[str, float] = field(default_factory=dict)
    moved_bytes: float = 0.0          # bytes sent by chips (each message once)

    def add_bytes(self, link_type: str, nbytes: float) -> None:
        self.bytes_by_type[link_type] = self.bytes_by_type.get(link_type, 0.0) + nbytes

    def add_energy(self, link_type: str, joules: float) -> None:
        self.energy_j += joules
        self.energy_by_type[link_type] = self.energy_by_type.get(link_type, 0.0) + joules


@dataclass(frozen=True)
class Group:
    """``size`` chips ``stride`` apart from ``base``; in the reduced view only ``explicit``
    of them are simulated, each standing for ``mult`` chips doing the same."""

    base: int
    size: int
    stride: int

    def members(self) -> list[int]:
        return [self.base + j * self.stride for j in range(self.size)]


class Communicator:
    def __init__(self, env: simpy.Environment, topo: Topology, *, full: bool, algorithm: str = "auto",
                 in_node: dict[int, float] | None = None):
        """``in_node``: for a representative chip (reduced view), how many of the chips it
        stands for are in its own node; they alone load that node's switch. Not given: the
        chips it stands for fill whole nodes (or all lie in its node if fewer)."""
        self.env = env
        self.topo = topo
        self.full = full
        self.net = Network(env)
        self.ledger = Ledger()
        self.algorithm = algorithm
        self.switched = topo.kind in ("switched", "two_level")
        self._axes: dict[tuple, list[Axis]] = {}
        self._rendezvous: dict[tuple, list] = {}
        self.in_node = in_node or {}

    def _node_mult(self, chip: int, mult: float) -> float:
        if chip in self.in_node:
            return self.in_node[chip]
        return min(mult, self.topo.spec.topology.node_size) if self.topo.kind == "two_level" else mult

    def axes(self, group: Group, rep: int) -> list[Axis]:
        key = (group.size, group.stride, rep)
        if key not in self._axes:
            self._axes[key] = self.topo.axes(group.size, group.stride, rep)
        return self._axes[key]

    # ---- collectives ------------------------------------------------------------------
    def collective(self, kind: str, nbytes: float, group: Group, chip: int, mult: float, seq: tuple,
                   algorithm: str | None = None):
        """Process: chip ``chip`` takes part in a collective over ``group``; returns when done.
        ``seq`` names this call identically on every member (full view rendezvous)."""
        if group.size == 1 or nbytes <= 0:
            return
        algo = algorithm or self.algorithm
        if not self.full:
            axes = self.axes(group, chip)
            for p in phases(kind, nbytes, axes, algo, self.switched):
                yield from self._reduced_phase(p, axes, mult, chip)
            return
        key = (kind, group.base, group.stride, seq)
        entry = self._rendezvous.setdefault(key, [0, self.env.event()])
        entry[0] += 1
        if entry[0] == group.size:
            del self._rendezvous[key]
            self.env.process(self._full_collective(kind, nbytes, group, algo, entry[1]))
        yield entry[1]

    def _reduced_phase(self, p: Phase, axes: list[Axis], mult: float, chip: int):
        """The representative's phase: one flow per part, each loading a shared switch with
        the represented members that cross it (their share of ``mult``; of a node's switch,
        their share of those in the node)."""
        node_mult = self._node_mult(chip, mult)
        yield self.env.timeout(p.steps * p.latency_s(axes))
        self.charge(p, axes, mult)
        flows = []
        for i, share in p.shares():
            path = []
            for h in axes[i].hops:
                r = self.net.resource(h.key, h.bandwidth_bps, h.link_type)
                if not h.shared:
                    path.append((r, h.weight))
                else:
                    path.append((r, h.weight * share * (node_mult if h.key[0] == "isw" else mult)))
            flows.append(self.net.transfer(path, p.bytes))
        yield flows[0] if len(flows) == 1 else self.env.all_of(flows)

    def charge(self, p: Phase, axes: list[Axis], mult: float) -> None:
        """Energy and bytes per link type of ``mult`` members' share of phase ``p``: each
        part's share of them sends ``p.bytes`` across its axis."""
        sent = p.bytes * mult
        self.ledger.moved_bytes += (p.bytes if p.sends is None else p.sends) * mult * p.senders()
        for i, f in p.shares():
            a = axes[i]
            for h in a.hops:
                if h.shared:
                    self.ledger.add_energy(h.link_type, sent * f * 8.0 * h.energy_per_bit_j)
                    continue
                for name, share in h.types():
                    self.ledger.add_bytes(name, sent * f * h.crossings * share)
                    # per type: its share of the crossings at its own energy per bit
                    e_bit = self.topo.links[name].energy_per_bit
                    self.ledger.add_energy(name, sent * f * h.crossings * share * 8.0 * e_bit)

    def _full_collective(self, kind: str, nbytes: float, group: Group, algo: str, done: simpy.Event):
        members = group.members()
        axes = self.topo.axes(group.size, group.stride, members[0])
        sizes = [a.size for a in axes]
        for p in phases(kind, nbytes, axes, algo, self.switched):
            if p.pattern == "tree":
                # reduce: member j (j = d mod 2d) sends to j - d; broadcast: back again
                d = abs(p.distance)
                pairs = [(members[j], members[j - d]) for j in range(d, len(members), 2 * d)]
                if p.distance < 0:
                    pairs = [(b, a) for a, b in pairs]
                yield from self._full_round(pairs, p.steps, p.bytes)
                continue
            pairs = []
            if p.pattern == "all_to_all":
                g = sizes[p.axis]
                per = p.bytes / (g - 1) if self.switched else 2 * p.bytes / (g * (g - 1))
                for j, src in enumerate(members):
                    for k in range(1, g):
                        pairs.append((src, members[_step(j, p.axis, sizes, k)]))
                yield from self._full_round(pairs, p.steps, per, latency_pairs=[
                    (src, members[_step(j, p.axis, sizes, 1)]) for j, src in enumerate(members)])
                continue
            for j, src in enumerate(members):
                nb = (j + 1) % len(members) if p.pattern == "flat" else _step(j, p.axis, sizes, 1)
                pairs.append((src, members[nb]))
            yield from self._full_round(pairs, p.steps, p.bytes)
        done.succeed()

    def _full_round(self, pairs, steps: float, nbytes: float, latency_pairs=None):
        routes = {pair: self.topo.route(*pair) for pair in pairs}
        lat_routes = routes if latency_pairs is None else {p: self.topo.route(*p) for p in latency_pairs}
        alpha = max(sum(l.latency_s for l in r) for r in lat_routes.values())
        yield self.env.timeout(steps * alpha)
        events = []
        for pair, route in routes.items():
            events.append(self.send_route(route, nbytes))
        yield self.env.all_of(events)

    def send_route(self, route, nbytes: float) -> simpy.Event:
        path = [(self.net.resource(l.key, l.bandwidth_bps, l.link_type), 1.0) for l in route]
        self.ledger.moved_bytes += nbytes
        for l in route:
            self.ledger.add_energy(l.link_type, nbytes * 8.0 * l.energy_per_bit_j)
            if l.key[0] not in ("switch", "isw", "xsw"):
                self.ledger.add_bytes(l.link_type, nbytes)
        return self.net.transfer(path, nbytes)

    # ---- point to point -----------------------------------------------------------------
    def p2p(self, nbytes: float, src: int, dst: int, pp_group: Group, mult: float) -> simpy.Event:
        """Start a message from ``src`` to ``dst``; an event that fires when it has arrived."""
        if self.full:
            route = self.topo.route(src, dst)
            return self._delayed(sum(l.latency_s for l in route), lambda: self.send_route(route, nbytes))
        axes = self.axes(pp_group, src)
        i = self._p2p_axis(src, dst, axes)
        if self.topo.kind in ("ring", "torus", "ocs_pod"):
            # one message: the links of its own route (an ocs_pod ring mixes electrical and
            # optical links; the axis' average mix is what a collective's steps see)
            axes, i = [self._route_axis(axes[i], self.topo.route(src, dst))], 0
        p = Phase(i, 1, nbytes, "p2p")
        return self.env.process(self._reduced_phase(p, axes, mult, src))

    @staticmethod
    def _route_axis(axis: Axis, route) -> Axis:
        """``axis`` as one message on ``route`` sees it: the route's slowest link, its link
        types and their energies, its latency; the axis' link class (and sharing) kept."""
        hop = axis.hops[0]
        slow = min(route, key=lambda l: l.bandwidth_bps)
        counts: dict[str, int] = {}
        for l in route:
            counts[l.link_type] = counts.get(l.link_type, 0) + 1
        hop = replace(hop, bandwidth_bps=slow.bandwidth_bps, link_type=slow.link_type,
                      energy_per_bit_j=sum(l.energy_per_bit_j for l in route), crossings=len(route),
                      mix=tuple((k, c / len(route)) for k, c in counts.items()))
        return Axis(axis.size, (hop,), sum(l.latency_s for l in route))

    def _p2p_axis(self, src: int, dst: int, axes: list[Axis]) -> int:
        if len(axes) == 1:
            return 0
        if self.topo.kind == "two_level":
            want = "iup" if self.topo.node_of(src) == self.topo.node_of(dst) else "xup"
            return next((i for i, a in enumerate(axes) if a.hops[0].key[-1] == want), 0)
        first = self.topo.route(src, dst)[0].key
        return next((i for i, a in enumerate(axes) if a.hops[0].key[-1] == first[-1]), 0)

    def _delayed(self, delay: float, start) -> simpy.Event:
        def proc():
            yield self.env.timeout(delay)
            yield start()
        return self.env.process(proc())


def _step(j: int, axis: int, sizes: list[int], k: int) -> int:
    """Index of the member ``k`` steps along ``axis`` from member ``j`` (mixed radix)."""
    below = math.prod(sizes[:axis])
    digit = (j // below) % sizes[axis]
    return j + (((digit + k) % sizes[axis]) - digit) * below

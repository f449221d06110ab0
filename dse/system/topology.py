"""Topologies: which links a message between two chips crosses, and how a group of chips
(a data-, tensor- or pipeline-parallel group) lies on them.

Chips are numbered 0..n-1 in the order of the system file; on a torus chip i has
coordinates with the first dimension fastest. A parallel group is ``size`` chips ``stride``
apart. On a torus (ring, ocs_pod) a group must cover whole dimensions (possibly every
``k``-th chip of one): it then runs its collectives dimension by dimension, each dimension
a ring. On a switched or two-level system any group works; a two-level group that spans
nodes has an intra-node axis and an inter-node axis.

Two views of the same links: ``route`` gives the physical links between two chips (the
full simulation, chip by chip) and ``axes`` gives a group's rings as link classes seen by
one representative chip, each link class standing for every link of that class (the
reduced simulation, role by role). A test runs both on small systems.
"""
from __future__ import annotations

from dataclasses import dataclass

from dse.errors import DesignError
from dse.system.spec import LinkSpec, SwitchSpec, SystemSpec


@dataclass(frozen=True)
class Hop:
    """One resource a message crosses: a link class or a switch."""

    key: tuple                 # resource identity (the representative chip's own, or shared)
    bandwidth_bps: float
    link_type: str
    energy_per_bit_j: float
    weight: float = 1.0        # flows per physical link per representative flow
    shared: bool = False       # a switch: every represented chip's flow loads it
    crossings: float = 1.0     # links of this class a message crosses
    mix: tuple[tuple[str, float], ...] = ()   # link types crossed, by fraction (default: link_type)

    def types(self) -> tuple[tuple[str, float], ...]:
        return self.mix or ((self.link_type, 1.0),)


@dataclass(frozen=True)
class Axis:
    """One ring of a group: ``size`` members; a step crosses ``hops`` after ``latency_s``."""

    size: int
    hops: tuple[Hop, ...]
    latency_s: float

    @property
    def bandwidth_bps(self) -> float:
        """What one member's message gets alone: its slowest own link, shared by the
        interleaved groups (switches aside)."""
        return min(h.bandwidth_bps / h.weight for h in self.hops if not h.shared)


@dataclass(frozen=True)
class PhysLink:
    key: tuple
    bandwidth_bps: float
    link_type: str
    energy_per_bit_j: float
    latency_s: float


def _switch_bw(sw: SwitchSpec) -> float:
    return float("inf") if sw.nonblocking else sw.bandwidth


def _x(dims) -> str:
    return "x".join(str(d) for d in dims)


class Topology:
    """The links of a system and how groups of chips map onto them."""

    def __init__(self, spec: SystemSpec):
        self.spec = spec
        self.n = spec.chip_count
        t = spec.topology
        self.kind = t.kind
        self.links: dict[str, LinkSpec] = dict(spec.links)
        if t.kind in ("ring", "torus", "ocs_pod"):
            self.shape = [self.n] if t.kind == "ring" else list(t.shape)
        else:
            self.shape = None

    # ---- shared helpers -----------------------------------------------------------
    def _link_hop(self, key: tuple, name: str, weight: float = 1.0) -> Hop:
        ln = self.links[name]
        return Hop(key, ln.bandwidth_bps, name, ln.energy_per_bit, weight)

    @staticmethod
    def _switch_hop(key: tuple, name: str, sw: SwitchSpec) -> Hop:
        bw = float("inf") if sw.nonblocking else sw.bandwidth
        return Hop(key, bw, name, sw.energy_per_bit * sw.hops, shared=True)

    def coords(self, chip: int) -> list[int]:
        out = []
        for d in self.shape:
            out.append(chip % d)
            chip //= d
        return out

    def chip_at(self, coords: list[int]) -> int:
        chip, mul = 0, 1
        for c, d in zip(coords, self.shape):
            chip += (c % d) * mul
            mul *= d
        return chip

    def node_of(self, chip: int) -> int:
        return chip // self.spec.topology.node_size if self.kind == "two_level" else 0

    # ---- torus link types (ocs_pod mixes electrical and optical) ------------------------
    def _torus_link(self, dim: int, coord: int) -> str:
        """Link type of the + link leaving coordinate ``coord`` of dimension ``dim``."""
        t = self.spec.topology
        if self.kind != "ocs_pod":
            return t.link
        block = min(t.cube[dim], self.shape[dim])
        return t.optical if (coord + 1) % block == 0 else t.link

    def _dim_links(self, dim: int) -> dict[str, int]:
        """How many + links of each type one ring of dimension ``dim`` has."""
        out: dict[str, int] = {}
        for c in range(self.shape[dim]):
            name = self._torus_link(dim, c)
            out[name] = out.get(name, 0) + 1
        return out

    # ---- groups as axes (reduced view) --------------------------------------------------
    def axes(self, size: int, stride: int, rep: int = 0) -> list[Axis]:
        """The rings a group of ``size`` chips ``stride`` apart runs its collectives over,
        as link classes seen from chip ``rep``. Raises DesignError if the group does not fit."""
        if size == 1:
            return []
        if self.kind in ("ring", "torus", "ocs_pod"):
            return [self._torus_axis(dim, g, st, rep) for dim, g, st in self._decompose(size, stride)]
        t = self.spec.topology
        if self.kind == "switched":
            lt = t.link
            lat = self.links[lt].latency + t.switch.latency * t.switch.hops
            return [Axis(size, (self._link_hop((rep, "up"), lt), self._switch_hop(("switch",), "switch", t.switch),
                                self._link_hop((rep, "down"), lt)), lat)]
        # two_level
        per_node = t.node_size
        out: list[Axis] = []
        if stride < per_node:
            if per_node % stride:
                raise DesignError(f"a group of {size} chips {stride} apart straddles nodes of {per_node} unevenly")
            inside = per_node // stride
            g1 = min(size, inside)
            if size > inside and size % inside:
                raise DesignError(f"a group of {size} chips {stride} apart does not fill whole nodes of {per_node}")
            out.append(self._level_axis("intra", g1, rep))
            if size > g1:
                out.append(self._level_axis("inter", size // g1, rep))
        else:
            if stride % per_node:
                raise DesignError(f"a group of chips {stride} apart straddles nodes of {per_node} unevenly")
            out.append(self._level_axis("inter", size, rep))
        return out

    def _level_axis(self, level: str, size: int, rep: int) -> Axis:
        lv = getattr(self.spec.topology, level)
        tag = "i" if level == "intra" else "x"
        hops = [self._link_hop((rep, tag + "up"), lv.link)]
        lat = self.links[lv.link].latency
        if lv.switch is not None:
            key = (tag + "sw", self.node_of(rep)) if level == "intra" else (tag + "sw",)
            hops.append(self._switch_hop(key, f"{level}_switch", lv.switch))
            lat += lv.switch.latency * lv.switch.hops
        hops.append(self._link_hop((rep, tag + "down"), lv.link))
        return Axis(size, tuple(hops), lat)

    def _decompose(self, size: int, stride: int) -> list[tuple[int, int, int]]:
        """(dimension, members along it, coordinate stride) of a group on the torus."""
        out = []
        g, s = size, stride
        for dim, d in enumerate(self.shape):
            if g == 1:
                break
            if s >= d:
                if s % d:
                    break
                s //= d
                continue
            if d % s or (g < d // s):
                break
            span = d // s
            if g % span:
                break
            out.append((dim, span, s))
            g //= span
            s = 1
        if g != 1:
            raise DesignError(f"on a {_x(self.shape)} {self.kind.replace('_', ' ')}, a group of {size} chips "
                              f"{stride} apart does not cover whole dimensions; choose parallel degrees "
                              "that are products of the shape's dimensions")
        return out

    def _torus_axis(self, dim: int, size: int, st: int, rep: int) -> Axis:
        counts = self._dim_links(dim)
        total = sum(counts.values())
        slowest = min(counts, key=lambda k: self.links[k].bandwidth_bps)
        # a step crosses st consecutive links (st interleaved groups share each link): its
        # energy is st links' worth on average, its latency that of the slowest such stretch
        energy = sum(self.links[k].energy_per_bit * c for k, c in counts.items()) / total
        d = self.shape[dim]
        lat = [self.links[self._torus_link(dim, c)].latency for c in range(d)]
        latency = max(sum(lat[(c + i) % d] for i in range(st)) for c in range(d))
        mix = tuple((k, c / total) for k, c in counts.items())
        hop = Hop((rep, "t", dim), self.links[slowest].bandwidth_bps, slowest, energy * st, weight=st,
                  crossings=st, mix=mix)
        return Axis(size, (hop,), latency)

    # ---- physical links (full view) ----------------------------------------------------
    def route(self, src: int, dst: int, level_hint: str | None = None) -> list[PhysLink]:
        """The physical links a message from ``src`` to ``dst`` crosses."""
        t = self.spec.topology
        if self.kind in ("ring", "torus", "ocs_pod"):
            out = []
            here = self.coords(src)
            there = self.coords(dst)
            for dim, d in enumerate(self.shape):
                steps = (there[dim] - here[dim]) % d
                for _ in range(steps):
                    name = self._torus_link(dim, here[dim])
                    ln = self.links[name]
                    out.append(PhysLink(("t", self.chip_at(here), dim), ln.bandwidth_bps, name,
                                        ln.energy_per_bit, ln.latency))
                    here[dim] = (here[dim] + 1) % d
            return out
        if self.kind == "switched":
            ln = self.links[t.link]
            return [PhysLink((src, "up"), ln.bandwidth_bps, t.link, ln.energy_per_bit, ln.latency),
                    PhysLink(("switch",), _switch_bw(t.switch), "switch", t.switch.energy_per_bit * t.switch.hops,
                             t.switch.latency * t.switch.hops),
                    PhysLink((dst, "down"), ln.bandwidth_bps, t.link, ln.energy_per_bit, 0.0)]
        level = "intra" if self.node_of(src) == self.node_of(dst) else "inter"
        lv = getattr(t, level)
        tag = "i" if level == "intra" else "x"
        ln = self.links[lv.link]
        out = [PhysLink((src, tag + "up"), ln.bandwidth_bps, lv.link, ln.energy_per_bit, ln.latency)]
        if lv.switch is not None:
            key = (tag + "sw", self.node_of(src)) if level == "intra" else (tag + "sw",)
            out.append(PhysLink(key, _switch_bw(lv.switch), f"{level}_switch", lv.switch.energy_per_bit * lv.switch.hops,
                                lv.switch.latency * lv.switch.hops))
        out.append(PhysLink((dst, tag + "down"), ln.bandwidth_bps, lv.link, ln.energy_per_bit, 0.0))
        return out

    # ---- inventory ----------------------------------------------------------------
    def inventory(self) -> dict[str, int]:
        """Ports (one per chip per level, both directions) or torus links of each link type."""
        t = self.spec.topology
        out: dict[str, int] = {}
        if self.kind in ("ring", "torus", "ocs_pod"):
            for dim, d in enumerate(self.shape):
                if d < 2:
                    continue
                rings = self.n // d
                for name, c in self._dim_links(dim).items():
                    out[name] = out.get(name, 0) + c * rings
            return out
        if self.kind == "switched":
            return {t.link: self.n}
        out[t.intra.link] = out.get(t.intra.link, 0) + self.n
        out[t.inter.link] = out.get(t.inter.link, 0) + self.n
        return out

    def capacity_bps(self) -> dict[str, float]:
        """Bandwidth in one direction of all links of each type together (for utilisation);
        a torus link or a port carries traffic both ways, so both directions count."""
        return {name: 2 * count * self.links[name].bandwidth_bps for name, count in self.inventory().items()}

    def switches(self) -> dict[str, tuple[SwitchSpec, int]]:
        t = self.spec.topology
        if self.kind == "switched":
            return {"switch": (t.switch, 1)}
        if self.kind == "two_level":
            out = {}
            if t.intra.switch is not None:
                out["intra_switch"] = (t.intra.switch, self.n // t.node_size)
            if t.inter.switch is not None:
                out["inter_switch"] = (t.inter.switch, 1)
            return out
        return {}

    def static_power_w(self) -> float:
        p = sum(self.links[name].static_power_w * c for name, c in self.inventory().items())
        return p + sum(sw.static_power * k for sw, k in self.switches().values())

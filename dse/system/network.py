"""Links as SimPy resources that share their bandwidth among the flows crossing them.

A flow moves bytes over a path of resources (links, switches). While flows overlap, each
resource divides its bandwidth equally among the flows on it, and a flow advances at the
rate of its most loaded resource (bottleneck fair share). Rates are recomputed whenever a
flow starts or ends, so two equal transfers sharing one link each take twice as long as
alone, and a transfer's time is bytes / bandwidth when nothing else is on its path.

A flow may stand for ``weight`` identical flows (the other chips of a role, which are not
simulated one by one): it then counts ``weight`` times in each resource's share.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import simpy

#: a flow is done when this fraction of its bytes is left (floating-point slack)
_EPS = 1e-12


@dataclass
class Resource:
    """One link direction, port or switch: a bandwidth and what moved over it."""

    key: tuple
    bandwidth_bps: float
    link_type: str
    bytes: float = 0.0       # bytes moved (every represented flow counted)
    busy_s: float = 0.0      # time with at least one flow on it
    load: float = 0.0        # weighted flows now on it


@dataclass
class Flow:
    path: list[tuple[Resource, float]]   # (resource, weight) pairs
    remaining: float
    done: simpy.Event
    rate: float = 0.0
    total: float = 0.0


@dataclass
class Network:
    env: simpy.Environment
    resources: dict[tuple, Resource] = field(default_factory=dict)
    flows: list[Flow] = field(default_factory=list)
    _last: float = 0.0
    _generation: int = 0

    def resource(self, key: tuple, bandwidth_bps: float, link_type: str) -> Resource:
        r = self.resources.get(key)
        if r is None:
            r = self.resources[key] = Resource(key, bandwidth_bps, link_type)
        return r

    def transfer(self, path: list[tuple[Resource, float]], nbytes: float) -> simpy.Event:
        """An event that fires when ``nbytes`` have crossed ``path`` (starting now)."""
        done = self.env.event()
        if nbytes <= 0 or not path:
            done.succeed()
            return done
        self._advance()
        self.flows.append(Flow(path, nbytes, done, total=nbytes))
        self._reschedule()
        return done

    # ---- fluid bookkeeping ------------------------------------------------------
    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._last
        if dt > 0:
            for r in self.resources.values():
                if r.load > 0:
                    r.busy_s += dt
            for f in self.flows:
                moved = min(f.remaining, f.rate * dt)
                f.remaining -= moved
                for r, w in f.path:
                    r.bytes += moved * w
        self._last = now

    def _reschedule(self) -> None:
        finished = [f for f in self.flows if f.remaining <= _EPS * f.total]
        if finished:
            self.flows = [f for f in self.flows if f.remaining > _EPS * f.total]
            for f in finished:
                f.done.succeed()
        for r in self.resources.values():
            r.load = 0.0
        for f in self.flows:
            for r, w in f.path:
                r.load += w
        next_dt = None
        for f in self.flows:
            f.rate = min(r.bandwidth_bps / r.load for r, _ in f.path)
            dt = f.remaining / f.rate
            next_dt = dt if next_dt is None or dt < next_dt else next_dt
        self._generation += 1
        if next_dt is not None:
            gen = self._generation
            wake = self.env.timeout(next_dt)
            wake.callbacks.append(lambda _e, g=gen: self._wake(g))

    def _wake(self, generation: int) -> None:
        if generation != self._generation:
            return  # a flow started or ended since this wake-up was set
        self._advance()
        for f in self.flows:  # the flow that set this wake-up is done up to rounding
            if f.rate > 0 and f.remaining / f.rate <= 1e-15 + 1e-12 * self.env.now:
                f.remaining = 0.0
        self._reschedule()

"""SimPy resources of one chip: a bus per memory tier and a pool of compute units."""
from __future__ import annotations

import simpy

from dse.spec.architecture import Architecture


class MemoryBus:
    """A memory tier's channels, interleaved into one bus of their summed bandwidth.

    A tile transfer holds the bus for bytes / bandwidth; requesters queue FIFO, so
    units that share a tier slow each other down. The access latency is pipelined
    (requests are issued ahead), so it delays the data but does not hold the bus.
    """

    def __init__(self, env: simpy.Environment, model):
        self.env = env
        self.name = model.name
        self.model = model
        self.latency = model.latency_s
        self.resource = simpy.Resource(env, capacity=1)
        self.busy_s = 0.0
        self._last: str | None = None

    def turn(self, kind: str) -> float:
        """Bus turnaround when the direction changes (read <-> write); counted as busy."""
        t = self.model.turnaround_s(self._last, kind)
        self._last = kind
        self.busy_s += t
        return t


class Machine:
    def __init__(self, env: simpy.Environment, arch: Architecture, models: dict):
        self.env = env
        self.buses = {m.name: MemoryBus(env, models[m.name]) for m in arch.memories}
        self.units = simpy.FilterStore(env, capacity=len(arch.compute))
        self.units.items.extend(u.name for u in arch.compute)
        self.unit_busy_s = {u.name: 0.0 for u in arch.compute}
        #: one port per SRAM with its bandwidth: units reading an SRAM at once queue for it
        self.sram_ports = {s.name: simpy.Resource(env, capacity=1) for s in arch.sram}
        self.sram_busy_s = {s.name: 0.0 for s in arch.sram}

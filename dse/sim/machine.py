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

    def __init__(self, env: simpy.Environment, name: str, bandwidth: float, latency: float):
        self.env = env
        self.name = name
        self.bandwidth = bandwidth
        self.latency = latency
        self.resource = simpy.Resource(env, capacity=1)
        self.busy_s = 0.0


class Machine:
    def __init__(self, env: simpy.Environment, arch: Architecture):
        self.env = env
        self.buses = {m.name: MemoryBus(env, m.name, m.bandwidth, m.latency) for m in arch.memories}
        self.units = simpy.FilterStore(env, capacity=len(arch.compute))
        self.units.items.extend(u.name for u in arch.compute)
        self.unit_busy_s = {u.name: 0.0 for u in arch.compute}

"""SimPy resources of one chip: a bus per memory tier and a pool of compute units."""
from __future__ import annotations

import itertools
from collections import deque

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
        self.last: str | None = None
        #: only one compute unit's ops use this bus, all one way (only reads, or only
        #: writes): one transfer at a time, so it is free whenever asked (set by the executor)
        self.private = False

    def turn(self, kind: str) -> float:
        """Bus turnaround when the direction changes (read <-> write); counted as busy."""
        t = self.model.turnaround_s(self.last, kind)
        self.last = kind
        self.busy_s += t
        return t


class UnitPool:
    """The compute units: a task takes the first free unit among those it may use, and a freed
    unit goes to the task that has waited longest for a set of units that includes it.

    This is SimPy's FilterStore discipline (same order, same events), kept per set of allowed
    units so that a release looks at one queue per distinct set rather than at every waiting
    task: thousands of independent ops waiting for a unit cost linear time, not quadratic.
    """

    def __init__(self, env: simpy.Environment, names: list[str]):
        self.env = env
        self.free = list(names)
        self._waiting: dict[frozenset, deque] = {}
        self._order = itertools.count()
        #: tasks waiting for a unit, and units freed but not yet handed to one of them
        self.waiting = 0
        self.releasing = 0

    def take(self, allowed) -> str | None:
        """The first free unit among ``allowed``, taken now; None if all are busy (then
        ``get``). Taking directly is what ``get`` would do: nobody waits for a free unit."""
        for name in self.free:
            if name in allowed:
                self.free.remove(name)
                return name
        return None

    def get(self, allowed) -> simpy.Event:
        """An event that succeeds with the name of the unit taken."""
        event = self.env.event()
        name = self.take(allowed)
        if name is not None:
            return event.succeed(name)
        self._waiting.setdefault(frozenset(allowed), deque()).append((next(self._order), event))
        self.waiting += 1
        return event

    def put(self, name: str) -> None:
        """Free a unit; a waiting task gets it once this release is processed (as with a Store)."""
        self.free.append(name)
        if not self.waiting:
            return  # nobody waits: a later get finds it free, as it would after the release
        self.releasing += 1
        release = self.env.event()
        release.callbacks.append(lambda _: self._hand_over(name))
        release.succeed()

    def _hand_over(self, name: str) -> None:
        self.releasing -= 1
        if name not in self.free:
            return  # taken meanwhile by a task that asked after the release
        queues = [q for key, q in self._waiting.items() if q and name in key]
        if queues:
            first = min(queues, key=lambda q: q[0][0])
            self.free.remove(name)
            self.waiting -= 1
            first.popleft()[1].succeed(name)


class Machine:
    def __init__(self, env: simpy.Environment, arch: Architecture, models: dict):
        self.env = env
        self.buses = {m.name: MemoryBus(env, models[m.name]) for m in arch.memories}
        self.units = UnitPool(env, [u.name for u in arch.compute])
        self.unit_busy_s = {u.name: 0.0 for u in arch.compute}
        #: one port per SRAM with its bandwidth: units reading an SRAM at once queue for it
        self.sram_ports = {s.name: simpy.Resource(env, capacity=1) for s in arch.sram}
        self.sram_busy_s = {s.name: 0.0 for s in arch.sram}
        #: SRAMs whose port only one compute unit's ops use (so never two at once): the
        #: executor names them where it may skip asking for them (dse/sim/pipeline.py)
        self.private_ports: set[str] = set()
        #: schedules of ops run alone, by what they depend on (pipeline.solo_end)
        self.solo_schedules: dict[tuple, tuple | None] = {}
        #: id of a plan's transfers -> (the transfers, its costs as a key, its buses, its
        #: schedules by the ways its buses last turned)
        self.solo_costs: dict[int, tuple] = {}

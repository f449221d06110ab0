"""One op as a double-buffered pipeline: load tiles, compute them, store results.

Identical tiles are grouped into at most ``max_chunks`` chunks so that the
number of events per op stays bounded. Within a chunk every stage progresses at
a constant rate, so a downstream stage may start once the first tile of the
upstream chunk is ready and cannot finish before the upstream's last tile plus
one tile of its own: with these two endpoint rules, chunks reproduce the
tile-by-tile schedule of an uncontended op exactly (tests/test_pipeline.py
compares both). Contention is resolved at chunk granularity on the buses.

Where nothing else runs while an op does (the executor knows), ``solo_end`` computes the
same schedule in closed form, chunk by chunk with the processes' own arithmetic, without
SimPy events: the op then costs the executor one timeout (tests/test_closed_form.py checks
it against the event-by-event run on every bundled design and workload). An op that went
through SimPy because another ran beside it is finished the same way once it is left alone
(``_compute``: the closed form resumed from the state its processes have reached).
"""
from __future__ import annotations

from dataclasses import dataclass

import simpy

from dse.sim.machine import Machine
from dse.sim.cost import OpPlan


def chunk_sizes(n_tiles: int, max_chunks: int | None) -> list[int]:
    k = n_tiles if not max_chunks else min(n_tiles, max_chunks)
    base, rem = divmod(n_tiles, k)
    return [base + 1] * rem + [base] * (k - rem)


@dataclass
class _Chunk:
    g: int
    loaded_first: simpy.Event | None  # (None where nothing is loaded: the chunk is there at the start)
    loaded: simpy.Event | None
    computed_first: simpy.Event | None  # (None where no process waits for it)
    computed: simpy.Event | None


class _Loaded:
    """How far an op's loads (``_load``) have got, for ``_compute`` to take the op over: each
    chunk's (first tile's event and value, the chunk's event and value), and at the end of the
    last chunk loaded (``upto``) the loads' clock, next start and their bus's busy time, and
    whether the op was alone by then. ``taken``: the loads stop where they stand."""

    __slots__ = ("alone", "values", "upto", "clock", "next_start", "busy", "alone_then", "taken")

    def __init__(self, alone: "Alone") -> None:
        self.alone = alone
        self.values: list[tuple] = []
        self.upto = -1
        self.alone_then = self.taken = False


class Alone:
    """What the executor knows of an op running through SimPy: ``now`` is set once nothing
    else can ask for any resource until the op ends (every other task waits for a unit)."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = False


def run_op(env: simpy.Environment, machine: Machine, plan: OpPlan, max_chunks: int | None,
           first_out: simpy.Event | None = None, alone: Alone | None = None):
    """SimPy process running one planned op to completion (load, compute, store).

    ``first_out``, if given, succeeds when the op's first tile of output is ready (computed,
    and stored where the op writes off chip): what a streaming consumer waits for. ``alone``,
    if given, may be set by the executor while the op runs (see ``_compute``)."""
    n = plan.n_tiles
    sizes = chunk_sizes(n, max_chunks)
    c_tile = plan.compute_s / n
    reads = [(machine.buses[t], s / n) for t, s in plan.read_s.items() if s > 0]
    writes = [(machine.buses[t], s / n) for t, s in plan.write_s.items() if s > 0]
    ports, private = [], []
    for name, t in plan.sram_s.items():
        if t > 0:
            if name in machine.private_ports:
                private.append((t / n, name))
            else:
                ports.append((machine.sram_ports[name], t / n, name))
    # a copy (a prefetch's DMA): its compute stage decides nothing (``_copy_compute``)
    copy = not c_tile and reads and writes and not ports and not private and first_out is None
    # a chunk's "computed" events exist only where a process waits for them (an event
    # nobody waits for changes nothing but SimPy's count): the store waits for every chunk,
    # the loads for all but the last two (double buffering), a streaming consumer for the first;
    # its "loaded" ones only where it is loaded (else it is there when the compute starts)
    event = env.event
    first_seen = bool(writes) or first_out is not None
    waited = len(sizes) if writes else len(sizes) - 2 if reads else 0
    chunks = [_Chunk(g, event() if reads else None, event() if reads else None, event() if first_seen else None,
                     event() if j < waited else None)
              for j, g in enumerate(sizes)]
    if copy and len(reads) == 1 and not reads[0][0].private:
        for ch in chunks:
            ch.loaded_first = _FirstTile(env, ch.g * reads[0][1])
    if reads:
        # Double buffering: tile i+2 may load only once tile i, which arrives `latency`
        # after its transfer, is computed. So tiles cannot start closer together on
        # average than (latency + load + compute) / 2; with latency longer than a tile's
        # transfer this, not the bus, sets the pace. Chunks apply it as a period.
        l_tile = max(t for _, t in reads)
        latency = max(bus.latency for bus, _ in reads)
        period = max(l_tile, c_tile, (latency + l_tile + c_tile) / 2)
        loads = _Loaded(alone) if len(reads) == 1 and alone is not None else None
        env.process(_load(env, chunks, reads, l_tile, latency, period, loads))
    if alone is not None and {id(b) for b, _ in reads} & {id(b) for b, _ in writes}:
        alone = None  # (see _compute: its loads and stores could ask for one bus at one instant)
    # an op that stores nothing and reads one bus at most may be taken over in closed form
    # once alone (see _compute)
    finish = None
    if alone is not None and not writes and first_out is None and (not reads or loads is not None):
        finish = (reads[0][0] if reads else None, l_tile if reads else 0.0, loads if reads else None)
    if copy:
        _copy_compute(env, chunks)
    else:
        compute = env.process(_compute(env, chunks, c_tile, ports, private, machine, alone, finish))
    if first_out is not None:
        s_tile = max((t for _, t in writes), default=0.0)
        env.process(_first_out(env, chunks[0], s_tile, first_out))
    if writes:
        yield env.process(_store(env, chunks, writes))
    else:
        yield compute


def _first_out(env, first: _Chunk, s_tile: float, event: simpy.Event):
    ready = yield first.computed_first
    ready += s_tile
    if ready > env.now:
        yield env.timeout(ready - env.now)
    event.succeed(env.now)


def _transfer(env, bus, t_tile: float, g: int, started: simpy.Event | None, loads: "_Loaded | None" = None):
    """Hold a bus for g tiles of t_tile each; report when the first tile will have arrived.
    A private bus (``MemoryBus.private``) is free whenever its one reader asks: no request.
    None where the op was taken over meanwhile (``loads.taken``): the bus is let go."""
    req = None if bus.private else bus.resource.request()
    if req is not None:
        yield req
        if loads is not None and loads.taken:
            bus.resource.release(req)
            return None
    turn = bus.turn("read")
    if turn:
        yield env.timeout(turn)
    start = env.now
    first = start + bus.latency + t_tile
    if started is not None:
        started.succeed(first)
    yield env.timeout(g * t_tile)
    if loads is not None and loads.taken:
        if req is not None:
            bus.resource.release(req)
        return None
    bus.busy_s += g * t_tile
    if req is not None:
        bus.resource.release(req)
    return start, first, env.now + bus.latency


def _load(env, chunks: list[_Chunk], reads, l_tile: float, latency: float, period: float,
          loads: _Loaded | None = None):
    next_start = env.now
    for j, ch in enumerate(chunks):
        if j >= 2:  # double buffering: chunk j reuses the buffer of chunk j-2
            yield chunks[j - 2].computed
            if loads is not None and loads.taken:
                return
        if next_start > env.now:
            yield env.timeout(next_start - env.now)
            if loads is not None and loads.taken:
                return
        if len(reads) == 1:
            bus, bt = reads[0]
            moved = yield from _transfer(env, bus, bt, ch.g, ch.loaded_first, loads)
            if moved is None:
                return
            start, first, done = moved
        else:
            procs = [env.process(_transfer(env, bus, bt, ch.g, None)) for bus, bt in reads]
            results = yield env.all_of(procs)
            starts, firsts, dones = zip(*results.values())
            start = min(starts)
            ch.loaded_first.succeed(max(firsts))
            done = max(dones)
        # the chunk's last tile cannot arrive before the double-buffer period allows
        done = max(done, start + (ch.g - 1) * period + l_tile + latency)
        next_start = start + ch.g * period
        ch.loaded.succeed(done)
        if loads is not None:
            loads.values.append((start, first, env.now, done))
            loads.upto, loads.clock, loads.next_start = j, env.now, next_start
            loads.busy, loads.alone_then = bus.busy_s, loads.alone.now


def _hold(env, port, t: float, name: str, machine: Machine) -> tuple[simpy.Event, list]:
    """Ask for an SRAM's port and hold it for t seconds once granted (its share of a chunk's
    operand traffic), without a process: the request's callback starts the hold, the hold's
    timeout releases the port. Returns the request and a list that holds the timeout once
    the request is granted (what to wait for)."""
    req = port.request()
    box: list = []

    def granted(_):
        hold = env.timeout(t)
        box.append(hold)

        def release(_):
            port.release(req)
            machine.sram_busy_s[name] += t
        hold.callbacks.append(release)
    req.callbacks.append(granted)
    return req, box


def _compute(env, chunks: list[_Chunk], c_tile: float, ports, private, machine: Machine,
             alone: Alone | None = None, finish: tuple | None = None):
    """The unit's tiles, chunk by chunk; the array and the SRAM ports work side by side, the
    slower sets the pace. A port is asked for when the chunk starts and released when its
    hold ends (FIFO among the ops asking for it), as a process holding it would, but with
    three events per hold (the grant, the hold's end, the release) instead of a process and
    a condition.

    A ``private`` port (``Machine.private_ports``: only one unit's ops use it, one at a time,
    and this op asks for it only once its previous hold has ended) is always free when
    asked: its hold is the time it takes, added to the array's, without asking. So is every
    port once the op is ``alone`` (nobody else can ask for one until it ends): from the next
    chunk on its holds go without asking. The times are those the requests would give (a
    free port is granted at once, and the hold ends by the array's time or its own, the later),
    and the op's other processes see the same times: where its loads and stores could ask
    for one bus at one instant, whose request comes first might depend on which process
    SimPy resumes first, and ``run_op`` passes no ``alone``.

    ``finish`` (an op that stores nothing and reads one bus at most: (that bus, its time per
    tile, how far its loads have got)): once the op is alone, and at the end of a chunk whose
    successor is loaded (its loads then wait for this chunk: they load nothing more before it
    is computed), the rest of the op has nothing to wait for but itself, and its steps are
    those of the closed form (``_solo_without_stores``) from where it stands: they are worked
    out, their bus and port busy times added, and the op ends at once when the last would
    have, its loads left waiting for a chunk that nobody will compute again."""
    sram_busy = machine.sram_busy_s
    t0 = env.now  # (where nothing is loaded, every chunk is there from the start: no event to wait for)
    computed_at: list[float] = []  # (for a take-over)
    for j, ch in enumerate(chunks):
        first = t0 if ch.loaded_first is None else (yield ch.loaded_first)
        if first > env.now:
            yield env.timeout(first - env.now)
        if ch.computed_first is not None:
            ch.computed_first.succeed(env.now + c_tile)
        if ports and alone is not None and alone.now:
            private = private + [(t, name) for _, t, name in ports]
            ports = []
        longest = ch.g * c_tile
        for t, name in private:
            held = ch.g * t
            sram_busy[name] += held
            if held > longest:
                longest = held
        array = env.timeout(longest)
        if len(ports) == 1:
            port, t, name = ports[0]
            req = port.request()
            yield req
            yield env.timeout(ch.g * t)
            port.release(req)
            sram_busy[name] += ch.g * t
        elif ports:
            held = [_hold(env, port, ch.g * t, name, machine) for port, t, name in ports]
            for req, box in held:
                yield req
                yield box[0]
        yield array
        loaded = t0 if ch.loaded is None else (yield ch.loaded)
        end = loaded + c_tile
        if end > env.now:
            yield env.timeout(end - env.now)
        if finish is not None and alone.now and j + 1 < len(chunks):
            rbus, l_tile, loads = finish
            if rbus is None or loads.alone_then:
                computed_at.append(env.now)
                named = [(name, t) for t, name in private] + [(name, t) for _, t, name in ports]
                resume = (j + 1, env.now, computed_at, [], -1, 0.0, 0.0, 0.0,
                          {name: sram_busy[name] for name, _ in named})
                if rbus is not None:
                    loads.taken = True
                    resume = (j + 1, env.now, computed_at, loads.values, loads.upto, loads.clock, loads.next_start,
                              loads.busy, resume[-1])
                end, buses, srams, _ = _solo_without_stores(rbus, l_tile, [c.g for c in chunks], c_tile, named,
                                                            resume)
                for bus, busy, way in buses:
                    bus.busy_s, bus.last = busy, way
                for name, busy in srams:
                    sram_busy[name] = busy
                yield env.timeout(end - env.now)
                env._now = end  # (the last step's own time: nothing else is scheduled, see above)
                return
        computed_at.append(env.now)
        if ch.computed is not None:
            ch.computed.succeed(env.now)


def _copy_compute(env, chunks: list[_Chunk]) -> None:
    """``_compute``'s stage for an op with no compute and no SRAM ports that loads and stores
    (a copy between memory tiers: a prefetch's DMA), as callbacks instead of a process.

    Such a stage decides nothing: it holds no resource and takes no time of its own, so each
    chunk only passes the loads' times on (its first tile's, then its last's) to the store
    and to the loads, through the events they wait for (``computed_first``, ``computed``).
    It must still pass them on at the same place among all the run's events: SimPy takes the
    events of one instant in the order they were scheduled, so a store or a load that asked
    for a shared bus one event earlier could be granted it before another op's request
    instead of after (or turn it the other way first). So every step below is taken from the
    same event as ``_compute``'s process took it, and schedules what that process did, in the
    same order, except what no other process sees:

    - the process's start and end, and each chunk's zero-length array timeout. That timeout
      was scheduled right after the chunk's ``computed_first``, at the same instant, so it
      was processed right after it, before any other event: its step (wait for the chunk's
      last tile) runs as the last callback of ``computed_first`` instead.
    - a ``computed_first`` or ``computed`` that would be the next event processed anyway:
      nothing else is scheduled at this instant, and the step runs as the only callback of
      the event being processed (a timeout of its own, or a load's event only it waits for)
      or the last. It is processed in place (``_fire``), its waiters resumed at once, as
      SimPy's step would. A ``computed`` is processed after the next chunk's first step (it
      was scheduled before that step, processed after it), so it counts as scheduled at
      this instant for that step (``held``).

    tests/test_closed_form.py checks a run of copies beside copies and ops against the same
    run with ``_compute``'s process."""
    queue = env._queue
    last = len(chunks) - 1

    def arrive(j: int, held: bool = False) -> None:  # wait for chunk j's first tile
        ev = chunks[j].loaded_first
        if ev.callbacks is None:  # (processed: a process would go on at once)
            started(j, ev._value, held)
        else:
            ev.callbacks.append(lambda e: started(j, e._value))

    def started(j: int, first: float, held: bool = False) -> None:
        now = env.now
        if first > now:
            env.timeout(first - now).callbacks.append(lambda _: first_tile(j))
        else:
            first_tile(j, held)

    def first_tile(j: int, held: bool = False) -> None:
        ch = chunks[j]
        ev = ch.computed_first
        if not held and (not queue or queue[0][0] > env.now):
            _fire(ev, env.now)
            wait_loaded(j)
        else:
            ev.succeed(env.now)
            cbs = ev.callbacks
            # (appended while computed_first is processed, so after every callback it has:
            # SimPy's step goes through the list as it grows)
            cbs.append(lambda _: cbs.append(lambda _: wait_loaded(j)))

    def wait_loaded(j: int) -> None:
        ev = chunks[j].loaded
        if ev.callbacks is None:
            loaded(j, ev._value)
        else:
            ev.callbacks.append(lambda e: loaded(j, e._value))

    def loaded(j: int, end: float) -> None:
        now = env.now
        if end > now:
            env.timeout(end - now).callbacks.append(lambda _: computed(j))
        else:
            computed(j)

    def computed(j: int) -> None:
        ev = chunks[j].computed
        inplace = (not queue or queue[0][0] > env.now)
        if not inplace:
            ev.succeed(env.now)
        if j < last:
            arrive(j + 1, inplace)
        if inplace:
            _fire(ev, env.now)

    arrive(0)


class _FirstTile(simpy.Event):
    """A copy's chunk's first tile, loaded (its ``loaded_first``), where the copy reads one
    bus that others may use: processed in place (``_fire``) where that moves nothing else.

    ``_transfer`` triggers it once the bus is granted (resumed as the last callback of the
    grant, or of its turnaround's timeout), then schedules its transfer's timeout
    (``transfer_s``) and waits. With nothing else scheduled at this instant, it would be the
    next event processed, right after that timeout was scheduled; its only waiter, the
    copy's compute stage, then schedules a timeout to the tile's arrival (or, not yet at
    this chunk, nothing). Processed in place, that timeout is scheduled before the
    transfer's instead of after it: every other event keeps its place, and those two keep
    their order too unless they fall at the same instant, or the tile is there at once
    (the stage would go on to what the store sees): it is then scheduled as before."""

    def __init__(self, env: simpy.Environment, transfer_s: float) -> None:
        super().__init__(env)
        self.transfer_s = transfer_s

    def succeed(self, value=None):
        env = self.env
        queue, now = env._queue, env._now
        if (not queue or queue[0][0] > now) and value > now and now + (value - now) != now + self.transfer_s:
            _fire(self, value)
            return self
        return super().succeed(value)


def _fire(event: simpy.Event, value) -> None:
    """Trigger ``event`` and process it at once, as ``simpy.Environment.step`` would: only
    where it would be the next event processed (nothing else scheduled at this instant, and
    nothing left to do in the event being processed)."""
    event._ok = True
    event._value = value
    callbacks, event.callbacks = event.callbacks, None
    for callback in callbacks:
        callback(event)


def _store(env, chunks: list[_Chunk], writes):
    for ch in chunks:
        first = yield ch.computed_first
        if first > env.now:
            yield env.timeout(first - env.now)
        s_tile = 0.0
        for bus, t in writes:
            req = None if bus.private else bus.resource.request()
            if req is not None:
                yield req
            turn = bus.turn("write")
            if turn:
                yield env.timeout(turn)
            s_tile = max(s_tile, t)
            yield env.timeout(ch.g * t)
            bus.busy_s += ch.g * t
            if req is not None:
                bus.resource.release(req)
        computed = yield ch.computed
        end = computed + s_tile
        if end > env.now:
            yield env.timeout(end - env.now)


def solo_end(machine: Machine, plan: OpPlan, max_chunks: int | None, t0: float) -> float | None:
    """When the op started at ``t0`` would end if nothing else used its buses and ports, as
    ``run_op``'s processes would find it, with the same side effects (bus turnarounds and
    busy time, SRAM port busy time). None where the op reads or writes several buses per
    direction, or where its loads and stores ask for one bus at the same instant (SimPy's
    event order would decide who goes first): those run event by event.

    The schedule depends only on the plan's costs and on which way each of its buses last
    turned, so it is worked out once per run for each (a transformer's layers share it) and
    shifted to ``t0``."""
    known = solo_schedule(machine, plan, max_chunks)
    if known is None:
        return None
    apply_solo(machine, known)
    return t0 + known[0]


def solo_schedule(machine: Machine, plan: OpPlan, max_chunks: int | None) -> tuple | None:
    """The op's schedule run alone from time 0, without its side effects: (duration, (bus,
    busy time, way it last turned) ..., (SRAM, port busy time) ..., (from, to, SRAM) of each
    port hold); None as in ``solo_end``."""
    # plans of one shape share their cost dicts (OpPlan.for_op): what they cost is looked up
    # by the identity of those, which live as long as the run
    costs = machine.solo_costs.get(id(plan.transfers))
    if costs is None or costs[0] is not plan.transfers:
        key = (plan.compute_s, plan.n_tiles, tuple(plan.read_s.items()), tuple(plan.write_s.items()),
               tuple(plan.sram_s.items()), max_chunks)
        buses = tuple(machine.buses[t] for t in plan.read_s) + tuple(machine.buses[t] for t in plan.write_s)
        costs = machine.solo_costs[id(plan.transfers)] = (plan.transfers, key, buses, {})
    _, key, buses, by_ways = costs
    # (the schedules of these costs, by the ways their buses last turned: no hash of the costs)
    ways = tuple([bus.last for bus in buses]) if buses else ()
    known = by_ways.get(ways, False)
    if known is False:
        key = (key, *ways)
        known = machine.solo_schedules.get(key, False)
        if known is False:
            known = machine.solo_schedules[key] = _solo_schedule(machine, plan, max_chunks)
        by_ways[ways] = known
    return known


def apply_solo(machine: Machine, known: tuple) -> None:
    """The side effects of an op run alone (``solo_schedule``): its buses' busy time and
    turnarounds, its SRAM ports' busy time."""
    for bus, b, way in known[1]:
        bus.busy_s += b
        bus.last = way
    if known[2]:
        ports = machine.sram_busy_s
        for name, b in known[2]:
            ports[name] += b


def _solo_schedule(machine: Machine, plan: OpPlan, max_chunks: int | None):
    """(duration, (bus, busy time added, the way it last turned) per bus, (SRAM, port busy
    time added) per SRAM, the port holds (from, to, SRAM)) of the op run alone from time 0,
    or None (see ``solo_end``).

    Each line mirrors a step of ``_load``, ``_compute`` or ``_store``: a process resumed by an
    event continues at max(its clock, the event's time), a wait until ``x`` lands at ``now +
    (x - now)`` as a SimPy timeout does, and loads and stores that share a bus take it in the
    order they ask for it (FIFO), each from when the other releases it."""
    t0 = 0.0
    reads = [(t, s) for t, s in plan.read_s.items() if s > 0]
    writes = [(t, s) for t, s in plan.write_s.items() if s > 0]
    if len(reads) > 1 or len(writes) > 1:
        return None
    n = plan.n_tiles
    sizes = chunk_sizes(n, max_chunks)
    chunks = len(sizes)
    c_tile = plan.compute_s / n
    ports = [(name, t / n) for name, t in plan.sram_s.items() if t > 0]
    if not writes:
        return _solo_without_stores(machine.buses[reads[0][0]] if reads else None, reads[0][1] / n if reads else 0.0,
                                    sizes, c_tile, ports)
    sram_busy = {name: 0.0 for name, _ in ports}
    holds: list[tuple[float, float, str]] = []  # (from, to, SRAM) of every port hold
    buses = [machine.buses[t] for t, _ in reads + writes]
    busy = {bus: 0.0 for bus in buses}
    last = {bus: bus.last for bus in buses}

    def turn(bus, kind: str) -> float:  # MemoryBus.turn on the copies
        t = bus.model.turnaround_s(last[bus], kind)
        last[bus] = kind
        busy[bus] += t
        return t

    computed_first: list[tuple[float, float]] = []  # (event time, value)
    computed: list[float] = []
    p_comp = t0

    def compute(g: int, first: tuple[float, float], loaded: tuple[float, float]) -> None:
        nonlocal p_comp
        start, p_comp = _compute_step(p_comp, first[0], first[1], loaded[0], loaded[1], g, c_tile, ports,
                                      sram_busy, holds)
        computed_first.append((start, start + c_tile))
        computed.append(p_comp)

    if not reads:
        for g in sizes:
            compute(g, (t0, t0), (t0, t0))
    else:
        rbus = machine.buses[reads[0][0]]
        l_tile = reads[0][1] / n
        latency = rbus.latency
        period = max(l_tile, c_tile, (latency + l_tile + c_tile) / 2)
    wbus = machine.buses[writes[0][0]] if writes else None
    w_tile = writes[0][1] / n if writes else 0.0
    shared = bool(reads) and rbus is wbus
    free = {}  # bus -> when its holder releases it
    p_load = next_start = p_store = t0
    j = i = 0  # next chunk to load, to store
    while (reads and j < chunks) or (writes and i < chunks):
        asks_load = asks_store = None
        if reads and j < chunks:
            p = p_load
            if j >= 2 and computed[j - 2] > p:
                p = computed[j - 2]
            if next_start > p:
                p = p + (next_start - p)
            asks_load = p
        if writes and i < len(computed):  # (store i asks after load i has started)
            p = p_store
            fired, first_out = computed_first[i]
            if fired > p:
                p = fired
            if first_out > p:
                p = p + (first_out - p)
            asks_store = p
        if shared and asks_load == asks_store:
            return None
        if asks_store is None or (asks_load is not None and asks_load < asks_store):
            g = sizes[j]
            p = max(asks_load, free.get(rbus, asks_load))
            t = turn(rbus, "read")
            if t:
                p = p + t
            start = p
            first = (start, start + rbus.latency + l_tile)
            p = p + g * l_tile
            busy[rbus] += g * l_tile
            free[rbus] = p
            done = max(p + rbus.latency, start + (g - 1) * period + l_tile + latency)
            next_start = start + g * period
            p_load = p
            compute(g, first, (p, done))
            j += 1
        else:
            g = sizes[i]
            p = max(asks_store, free.get(wbus, asks_store))
            t = turn(wbus, "write")
            if t:
                p = p + t
            p = p + g * w_tile
            busy[wbus] += g * w_tile
            free[wbus] = p
            if computed[i] > p:
                p = computed[i]
            end = computed[i] + w_tile
            if end > p:
                p = p + (end - p)
            p_store = p
            i += 1
    return ((p_store if writes else p_comp), tuple([(b, t, last[b]) for b, t in busy.items()]),
            tuple(sram_busy.items()), tuple(holds))


def _compute_step(p: float, first_event: float, first_value: float, loaded_event: float, loaded_value: float,
                  g: int, c_tile: float, ports, sram_busy: dict, holds: list) -> tuple[float, float]:
    """``_compute``'s step for a chunk of ``g`` tiles run alone, as its process would find it: from
    ``p`` (the previous chunk's end) it waits for the chunk's first tile (an event at
    ``first_event`` whose value is ``first_value``), computes beside its SRAM ports (the slower
    sets the pace; their busy time and holds are recorded), then waits for the chunk's last
    tile (``loaded_*``) plus one tile of compute. Returns (when it started, when it ended)."""
    if first_event > p:
        p = first_event
    if first_value > p:
        p = p + (first_value - p)  # a timeout to the value, as SimPy adds it
    start = p
    end = p + g * c_tile
    for name, t in ports:  # the array and the ports side by side; the slower sets the pace
        held = g * t
        sram_busy[name] += held
        until = p + held
        holds.append((p, until, name))
        if until > end:
            end = until
    p = end
    if loaded_event > p:
        p = loaded_event
    end = loaded_value + c_tile
    if end > p:
        p = p + (end - p)
    return start, p


def _solo_without_stores(rbus, l_tile: float, sizes: list[int], c_tile: float, ports, resume: tuple | None = None):
    """``_solo_schedule`` for an op that stores nothing off chip (a network's usual case: its
    activations stay on chip): the same steps, with nothing to order between loads and
    stores, as one pass over the chunks (load j, then compute j).

    ``resume``: go on from where an op that ran through SimPy stands (``_compute``'s take-over)
    instead of from time 0: (its next chunk to compute, its compute's clock, when each chunk
    so far was computed, each chunk loaded so far's (first-tile event, value, loaded event,
    value), the last of them, and at its end the loads' clock, their next start and the bus's
    busy time, and the ports' busy times so far); the busy times returned then include those
    so far, each term added in the order SimPy would have added it."""
    holds: list[tuple[float, float, str]] = []
    if resume is None:
        j0, p_comp, computed, loaded, upto, p_load, next_start, busy = 0, 0.0, [], (), -1, 0.0, 0.0, 0.0
        sram_busy = {name: 0.0 for name, _ in ports}
        free = None  # when the bus is released
    else:
        j0, p_comp, computed, loaded, upto, p_load, next_start, busy, sram_busy = resume
        free = p_load
    first = upto + 1  # the first chunk these steps load (those before: ``loaded``)
    if rbus is not None:
        latency = rbus.latency
        period = max(l_tile, c_tile, (latency + l_tile + c_tile) / 2)
        way = rbus.last
        # the bus turns before the first load, if at all, then reads again (a pure function)
        turns = (rbus.model.turnaround_s(way, "read"), rbus.model.turnaround_s("read", "read"))
    f0 = f1 = l0 = l1 = 0.0  # (without reads, every chunk is loaded at 0)
    for j in range(j0, len(sizes)):
        g = sizes[j]
        if rbus is not None:  # _load's step for chunk j
            if j < first:
                f0, f1, l0, l1 = loaded[j]
            else:
                p = p_load
                if j >= 2 and computed[j - 2] > p:
                    p = computed[j - 2]
                if next_start > p:
                    p = p + (next_start - p)
                if free is not None and free > p:  # (max(p, free))
                    p = free
                t = turns[j > first]
                way = "read"
                busy += t
                if t:
                    p = p + t
                start = p
                f0, f1 = start, start + latency + l_tile
                p = p + g * l_tile
                busy += g * l_tile
                free = p
                done = max(p + latency, start + (g - 1) * period + l_tile + latency)
                next_start = start + g * period
                p_load = p
                l0, l1 = p, done
        _, p_comp = _compute_step(p_comp, f0, f1, l0, l1, g, c_tile, ports, sram_busy, holds)
        computed.append(p_comp)
    buses = ((rbus, busy, way),) if rbus is not None else ()
    return p_comp, buses, tuple(sram_busy.items()), tuple(holds)

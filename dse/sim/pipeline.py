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
it against the event-by-event run on every bundled design and workload).
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
    loaded_first: simpy.Event
    loaded: simpy.Event
    computed_first: simpy.Event
    computed: simpy.Event


def run_op(env: simpy.Environment, machine: Machine, plan: OpPlan, max_chunks: int | None,
           first_out: simpy.Event | None = None):
    """SimPy process running one planned op to completion (load, compute, store).

    ``first_out``, if given, succeeds when the op's first tile of output is ready (computed,
    and stored where the op writes off chip): what a streaming consumer waits for."""
    n = plan.n_tiles
    sizes = chunk_sizes(n, max_chunks)
    chunks = [_Chunk(g, env.event(), env.event(), env.event(), env.event()) for g in sizes]
    c_tile = plan.compute_s / n
    reads = [(machine.buses[t], s / n) for t, s in plan.read_s.items() if s > 0]
    writes = [(machine.buses[t], s / n) for t, s in plan.write_s.items() if s > 0]
    if reads:
        # Double buffering: tile i+2 may load only once tile i, which arrives `latency`
        # after its transfer, is computed. So tiles cannot start closer together on
        # average than (latency + load + compute) / 2; with latency longer than a tile's
        # transfer this, not the bus, sets the pace. Chunks apply it as a period.
        l_tile = max(t for _, t in reads)
        latency = max(bus.latency for bus, _ in reads)
        period = max(l_tile, c_tile, (latency + l_tile + c_tile) / 2)
        env.process(_load(env, chunks, reads, l_tile, latency, period))
    else:
        for ch in chunks:
            ch.loaded_first.succeed(env.now)
            ch.loaded.succeed(env.now)
    ports = [(machine.sram_ports[name], t / n, name) for name, t in plan.sram_s.items() if t > 0]
    compute = env.process(_compute(env, chunks, c_tile, ports, machine))
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


def _transfer(env, bus, t_tile: float, g: int, started: simpy.Event | None):
    """Hold a bus for g tiles of t_tile each; report when the first tile will have arrived."""
    with bus.resource.request() as req:
        yield req
        turn = bus.turn("read")
        if turn:
            yield env.timeout(turn)
        start = env.now
        first = start + bus.latency + t_tile
        if started is not None:
            started.succeed(first)
        yield env.timeout(g * t_tile)
        bus.busy_s += g * t_tile
    return start, first, env.now + bus.latency


def _load(env, chunks: list[_Chunk], reads, l_tile: float, latency: float, period: float):
    next_start = env.now
    for j, ch in enumerate(chunks):
        if j >= 2:  # double buffering: chunk j reuses the buffer of chunk j-2
            yield chunks[j - 2].computed
        if next_start > env.now:
            yield env.timeout(next_start - env.now)
        if len(reads) == 1:
            bus, bt = reads[0]
            start, first, done = yield from _transfer(env, bus, bt, ch.g, ch.loaded_first)
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


def _port(env, port, t: float, name: str, machine: Machine):
    """Hold an SRAM's port for t seconds (its share of a chunk's operand traffic)."""
    with port.request() as req:
        yield req
        yield env.timeout(t)
        machine.sram_busy_s[name] += t


def _compute(env, chunks: list[_Chunk], c_tile: float, ports, machine: Machine):
    for ch in chunks:
        first = yield ch.loaded_first
        if first > env.now:
            yield env.timeout(first - env.now)
        ch.computed_first.succeed(env.now + c_tile)
        if ports:  # the array and the SRAM ports work side by side; the slower sets the pace
            held = [env.process(_port(env, port, ch.g * t, name, machine)) for port, t, name in ports]
            yield env.all_of([env.timeout(ch.g * c_tile), *held])
        else:
            yield env.timeout(ch.g * c_tile)
        loaded = yield ch.loaded
        end = loaded + c_tile
        if end > env.now:
            yield env.timeout(end - env.now)
        ch.computed.succeed(env.now)


def _store(env, chunks: list[_Chunk], writes):
    for ch in chunks:
        first = yield ch.computed_first
        if first > env.now:
            yield env.timeout(first - env.now)
        s_tile = 0.0
        for bus, t in writes:
            with bus.resource.request() as req:
                yield req
                turn = bus.turn("write")
                if turn:
                    yield env.timeout(turn)
                s_tile = max(s_tile, t)
                yield env.timeout(ch.g * t)
                bus.busy_s += ch.g * t
        computed = yield ch.computed
        end = computed + s_tile
        if end > env.now:
            yield env.timeout(end - env.now)


def solo_end(machine: Machine, plan: OpPlan, max_chunks: int | None, t0: float) -> float | None:
    """When the op started at ``t0`` would end if nothing else used its buses and ports, as
    ``run_op``'s processes would find it, with the same side effects (bus turnarounds and
    busy time, SRAM port busy time). None where the op alone contends with itself (one bus
    both read and written, or several buses per direction): those run event by event.

    Each line mirrors a step of ``_load``, ``_compute`` or ``_store``; a process resumed by
    an event continues at max(its clock, the event's time), and a wait until ``x`` lands at
    ``now + (x - now)``, as a SimPy timeout does."""
    reads = [(t, s) for t, s in plan.read_s.items() if s > 0]
    writes = [(t, s) for t, s in plan.write_s.items() if s > 0]
    if len(reads) > 1 or len(writes) > 1 or (reads and writes and reads[0][0] == writes[0][0]):
        return None
    n = plan.n_tiles
    sizes = chunk_sizes(n, max_chunks)
    c_tile = plan.compute_s / n
    # load: chunk j's first tile (event time, value) and its whole chunk (event time, value)
    if reads:
        bus = machine.buses[reads[0][0]]
        l_tile = reads[0][1] / n
        latency = bus.latency
        period = max(l_tile, c_tile, (latency + l_tile + c_tile) / 2)
    ports = [(name, t / n) for name, t in plan.sram_s.items() if t > 0]
    sram_busy = machine.sram_busy_s
    computed_first: list[tuple[float, float]] = []
    computed: list[float] = []
    p_load = next_start = p_comp = t0
    for j, g in enumerate(sizes):
        if reads:
            if j >= 2 and computed[j - 2] > p_load:
                p_load = computed[j - 2]
            if next_start > p_load:
                p_load = p_load + (next_start - p_load)
            turn = bus.turn("read")
            if turn:
                p_load = p_load + turn
            start = p_load
            first = (start, start + bus.latency + l_tile)
            p_load = p_load + g * l_tile
            bus.busy_s += g * l_tile
            done = max(p_load + bus.latency, start + (g - 1) * period + l_tile + latency)
            next_start = start + g * period
            loaded = (p_load, done)
        else:
            first = loaded = (t0, t0)
        # compute
        if first[0] > p_comp:
            p_comp = first[0]
        if first[1] > p_comp:
            p_comp = p_comp + (first[1] - p_comp)
        computed_first.append((p_comp, p_comp + c_tile))
        end = p_comp + g * c_tile
        for name, t in ports:  # the array and the ports side by side; the slower sets the pace
            sram_busy[name] += g * t
            if p_comp + g * t > end:
                end = p_comp + g * t
        p_comp = end
        if loaded[0] > p_comp:
            p_comp = loaded[0]
        end = loaded[1] + c_tile
        if end > p_comp:
            p_comp = p_comp + (end - p_comp)
        computed.append(p_comp)
    if not writes:
        return p_comp
    wbus = machine.buses[writes[0][0]]
    w_tile = writes[0][1] / n
    p = t0
    for j, g in enumerate(sizes):
        fired, first_out = computed_first[j]
        if fired > p:
            p = fired
        if first_out > p:
            p = p + (first_out - p)
        turn = wbus.turn("write")
        if turn:
            p = p + turn
        p = p + g * w_tile
        wbus.busy_s += g * w_tile
        if computed[j] > p:
            p = computed[j]
        end = computed[j] + w_tile
        if end > p:
            p = p + (end - p)
    return p

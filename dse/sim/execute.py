"""The execute pass: one SimPy executor over the machine's resources (units, memory buses,
SRAM ports; links later) running every task of a program by its plan.

A task starts once its dependencies have (a process is made for it then, not before),
copies any prefetched tensors it reads first, takes the first free unit among those the
mapper allowed, and runs its op as the chunked pipeline of dse/sim/pipeline.py. SimPy
decides queuing and overlap; the plans decided every cost.

Where a task is the only one running (every other started task waits for a unit it holds,
and every other task for a dependency), nothing can contend with it until it ends, so its
op runs in closed form
(``pipeline.solo_end``: one timeout instead of a process per stage and an event per chunk)
and the same process goes on with its successor when that is again the only one. Where
several run at once, their ops go through SimPy event by event; once all but one have ended
and nothing else can start before it does, that one stops asking for SRAM ports (nobody else
can hold one) and, where it stores nothing, is finished in closed form from where it stands
(``pipeline._compute``). ``closed_form=False`` runs every op event by event; the tables are
the same (tests/test_closed_form.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import simpy

from dse.errors import DesignError
from dse.sim.cost import OpPlan
from dse.sim.machine import Machine
from dse.sim.map import Mapping
from dse.sim.pipeline import Alone, apply_solo, run_op, solo_end, solo_schedule
from dse.sim.program import Program


@dataclass
class Run:
    """What happened: the plan each task ran, when, and the machine's busy counters."""

    machine: Machine
    makespan_s: float
    events: int
    #: task -> (plan it ran, start s, end s), in completion order; prefetch copies included
    ran: dict[str, tuple[OpPlan, float, float]] = field(default_factory=dict)
    timeline: list[dict] = field(default_factory=list)
    migrations: list[OpPlan] = field(default_factory=list)
    run_s: float = 0.0


def _distinct(mapping: Mapping):
    """The mapping's plans, one per shape: plans of one shape share their cost dicts (and
    their unit), so each is looked at once."""
    return {id(plan.transfers): plan for plan in mapping.plans.values()}.values()


def private_ports(mapping: Mapping, migrations: dict[str, list[OpPlan]]) -> set[str]:
    """SRAMs whose port the plans of only one compute unit use (every unit a task may take
    counted): a unit runs one op at a time, so no two ops ever ask for such a port at once.
    Prefetch copies are not serialised by a unit: any port one of them uses is shared."""
    users: dict[str, set] = {}
    for plan in _distinct(mapping):
        for name, t in plan.sram_s.items():
            if t > 0:
                users.setdefault(name, set()).add(plan.unit)
    for plans in migrations.values():
        for plan in plans:
            for name, t in plan.sram_s.items():
                if t > 0:
                    users.setdefault(name, set()).update((1, 2))  # (two users: never private)
    return {name for name, units in users.items() if len(units) == 1}


def private_buses(mapping: Mapping, migrations: dict[str, list[OpPlan]]) -> set[str]:
    """Memory buses that the plans of only one compute unit use, and all the same way (only
    reads or only writes): a unit runs one op at a time, and an op moves one chunk at a time
    each way, so no transfer on such a bus ever waits for another. Prefetch copies make a
    bus shared."""
    users: dict[str, set] = {}
    for plan in _distinct(mapping):
        for way, times in (("read", plan.read_s), ("write", plan.write_s)):
            for name, t in times.items():
                if t > 0:
                    users.setdefault(name, set()).add((plan.unit, way))
    for plans in migrations.values():
        for plan in plans:
            for name in (*plan.read_s, *plan.write_s):
                users.setdefault(name, set()).update((1, 2))  # (two users: never private)
    return {name for name, uses in users.items() if len(uses) == 1}


def execute(program: Program, mapping: Mapping, migrations: dict[str, list[OpPlan]], models: dict,
            max_chunks: int | None, closed_form: bool = True) -> Run:
    """Run every task on a fresh SimPy machine; raises DesignError if some never ran."""
    arch = program.arch
    env = simpy.Environment()
    machine = Machine(env, arch, models)
    tasks = program.tasks
    index = {t.name: i for i, t in enumerate(tasks)}
    # consumers of each task, and how many of its dependencies each task still waits for
    after: list[list[int]] = [[] for _ in tasks]
    streams_to: list[list[int]] = [[] for _ in tasks]
    waiting = [len(t.deps) for t in tasks]
    for i, t in enumerate(tasks):
        for d in t.deps:
            (streams_to if d.streaming else after)[index[d.task]].append(i)
    streaming = any(streams_to)
    closed_form = closed_form and not streaming
    # a streaming consumer waits for its producer's end too: those producers keep an event
    done = {tasks[i].name: env.event() for i, s in enumerate(streams_to) if s}
    pending = {name: list(plans) for name, plans in migrations.items()}
    run = Run(machine, 0.0, 0)
    finished = 0
    active = 0  # tasks whose process exists and has not finished

    starting: set[int] = set()  # made ready, their process not yet begun

    def solo() -> bool:
        """Whether the calling task runs alone until it ends: every other started task waits
        for a unit (theirs are all busy, and this task is the only one holding any) or is
        about to, and no unit is being handed over."""
        units = machine.units
        if not closed_form or units.releasing:
            return False
        others = active - units.waiting - 1
        for j in starting:
            name = tasks[j].name
            if name in pending or any(u in units.free for u in mapping.choices[name]):
                return False
            others -= 1
        return others == 0

    def ready(i: int) -> None:
        nonlocal active
        active += 1
        starting.add(i)
        env.process(task_process(i))

    def satisfied(consumers: list[int]) -> list[int]:
        out = []
        for j in consumers:
            waiting[j] -= 1
            if waiting[j] == 0:
                out.append(j)
        return out

    queue = env._queue  # SimPy's schedule: while it is empty, nothing but the running process can act

    def sync(now: float) -> None:
        """SimPy's clock to this process's ``now`` before it schedules anything. A process runs
        ahead of SimPy's clock only while nothing else is scheduled (see ``closed_end``), so no
        event is skipped: the clock lands exactly where a timeout to ``now`` would have put it."""
        if now != env.now:
            env._now = now

    units = machine.units
    waits: dict[int, list[str]] = {}  # tasks waiting for a unit, in the order they asked
    planned: dict[int, float] = {}  # task -> when its op ends, shown uncontended by ``fork``

    def fork(freed: str, made_ready: list[int], now: float) -> None:
        """A task that ran alone ended at ``now``, freed unit ``freed`` and made ``made_ready``
        ready. The tasks that start now (those made ready take free units first, in order,
        then the freed unit goes to the task that has waited longest for it, as UnitPool does)
        run their ops in closed form where none of them can wait for another: they use no bus
        in common (a bus also keeps which way it last turned), and an SRAM port two of them
        use is never held by both at once, with room to spare, in their schedules run alone;
        and nothing else can start until the last of them has ended (each one that ends
        before it frees a unit nobody waits for, and makes ready only tasks whose units are
        all still busy and which have no tensors to prefetch). Where they would contend, or
        might, they run event by event: contention goes through SimPy."""
        free = list(units.free)
        unplaced: list[tuple[int, list[str]]] = []  # made ready, no free unit: they queue last
        group: list[tuple[int, str]] = []
        for j in made_ready:
            if tasks[j].name in pending:
                return
            unit = next((u for u in free if u in mapping.choices[tasks[j].name]), None)
            if unit is None:
                unplaced.append((j, mapping.choices[tasks[j].name]))
            else:
                free.remove(unit)
                group.append((j, unit))
        taken = None  # the waiting task the freed unit goes to
        if units.releasing and freed in free:
            # the first in line that may use it (scanned lazily: thousands may wait)
            taken = next((j for j, allowed in waits.items() if freed in allowed), None)
            if taken is None:
                k = next((k for k, (_, allowed) in enumerate(unplaced) if freed in allowed), None)
                if k is not None:
                    taken = unplaced.pop(k)[0]
            if taken is not None:
                free.remove(freed)
                group.append((taken, freed))
        if len(group) < 2:
            return  # one op: it finds itself alone (``solo``)
        queue = [(j, allowed) for j, allowed in waits.items() if j != taken] + unplaced
        schedules = [solo_schedule(machine, mapping.plans[(tasks[j].name, u)], max_chunks) for j, u in group]
        if None in schedules:
            return
        buses = [bus for known in schedules for bus, _, _ in known[1]]
        if len(set(buses)) < len(buses):
            return
        holds = sorted((now + a, now + b, name, k) for k, known in enumerate(schedules) for a, b, name in known[3])
        margin = 1e-9 * (now + max(known[0] for known in schedules))
        for x, (a, b, name, k) in enumerate(holds):
            for a2, _, name2, k2 in holds[x + 1:]:
                if a2 - b > margin:
                    break
                if name2 == name and k2 != k:
                    return  # one might wait for the other's port
        ends = [now + known[0] for known in schedules]
        order = sorted(zip(ends, group))
        if order[0][0] <= now or len(set(ends)) < len(ends):
            return  # ends at the same instant: SimPy's event order decides what follows
        left = {}  # dependencies still awaited, where they change before the last end
        for _, (j, unit) in order[:-1]:
            free.append(unit)
            if any(unit in allowed for _, allowed in queue):
                return  # a waiting task would start on it
            for c in after[j]:
                left[c] = left.get(c, waiting[c]) - 1
                if left[c] == 0:
                    allowed = mapping.choices[tasks[c].name]
                    if tasks[c].name in pending or any(u in free for u in allowed):
                        return  # it would start before the last of the group ends
                    queue.append((c, allowed))
        for known, end, (j, _) in zip(schedules, ends, group):
            apply_solo(machine, known)
            planned[j] = end

    def closed_end(plan: OpPlan, now: float, task: int | None = None) -> float | None:
        """When the op started at ``now`` ends if it runs alone (``solo``), or beside others
        it cannot contend with (``fork``), else None."""
        if planned and task in planned:
            return planned.pop(task)
        if not closed_form or units.releasing:
            return None
        if starting:
            if not solo():
                return None
        elif active - units.waiting != 1:
            return None
        return solo_end(machine, plan, max_chunks, now)

    private = not closed_form  # whether the private ports and buses are known

    lone: dict[int, Alone] = {}  # task -> what its op running through SimPy knows (pipeline.Alone)

    def run_events(plan: OpPlan, now: float, task: int, first_out=None):
        """Run a plan's pipeline from ``now`` as SimPy processes; returns when it ends."""
        nonlocal private
        if not private:  # found for the run's first op through SimPy, if any
            private = True
            machine.private_ports = private_ports(mapping, migrations)
            for name in private_buses(mapping, migrations):
                machine.buses[name].private = True
        sync(now)
        alone = lone[task] = Alone()
        yield env.process(run_op(env, machine, plan, max_chunks, first_out, alone))
        del lone[task]
        return env.now

    def left_alone() -> None:
        """Called where a task ends or starts to wait for a unit: if one task's op is left
        running through SimPy and nothing else can start until it ends (``solo``, from its
        side), nothing can contend with it any more: it need not ask for SRAM ports."""
        if len(lone) == 1 and solo():
            next(iter(lone.values())).now = True

    def wait_until(end: float, now: float):
        yield env.timeout(end - now)
        return env.now

    # A plan (a task's op, or a prefetch copy) started at ``now`` runs in closed form where
    # nothing can contend with it (``closed_end``), else as SimPy processes (``run_events``).
    # A closed-form op with nothing else scheduled (no task waiting to start, no unit being
    # handed over) is not even a timeout: the process's own clock moves on to where that
    # timeout would have landed, and nothing can happen meanwhile that would need SimPy to
    # order it. (Written out where a plan runs: a generator per op costs more than the rest.)

    choices, plans = mapping.choices, mapping.plans
    ran, timeline, unit_busy = run.ran, run.timeline, machine.unit_busy_s

    def task_process(i: int):
        nonlocal active, finished
        starting.discard(i)
        now = env.now
        while True:
            task = tasks[i]
            name = task.name
            # first use of prefetched tensors: copy them over
            for mig in pending.pop(name, ()) if pending else ():
                t0 = now
                end = closed_end(mig, now)
                if end is None:
                    now = yield from run_events(mig, now, i)
                elif end > now:
                    now = (yield from wait_until(end, now)) if queue else now + (end - now)
                run.migrations.append(mig)
                ran[mig.op.name] = (mig, t0, now)
                timeline.append({"op": mig.op.name, "resource": "dma", "start_s": t0, "end_s": now})
            allowed = choices[name]
            unit = units.take(allowed)
            if unit is None:
                sync(now)
                waits[i] = allowed
                asked = units.get(allowed)
                if lone:
                    left_alone()
                unit = yield asked
                del waits[i]
                now = env.now
            plan = plans[(name, unit)]
            start = now
            first_out = None
            if streams_to[i]:
                # a streaming consumer may start on this task's first tile of output
                sync(now)
                first_out = env.event()
                first_out.callbacks.append(lambda _, i=i: [ready(j) for j in satisfied(streams_to[i])])
            end = closed_end(plan, now, i)
            if end is None:
                now = yield from run_events(plan, now, i, first_out)
            elif end > now:
                now = (yield from wait_until(end, now)) if queue else now + (end - now)
            if streaming:
                upstream = [done[d.task] for d in task.deps if d.streaming]
                if upstream:
                    # it still cannot end before the producer has, plus one tile of its own
                    yield env.all_of(upstream)
                    ends = max(e.value for e in upstream) + plan.compute_s / plan.n_tiles
                    if ends > env.now:
                        yield env.timeout(ends - env.now)
                    now = env.now
            unit_busy[unit] += plan.compute_s
            sync(now)
            # it ran alone: every other task waits for a unit, none is about to start
            alone = closed_form and not starting and not units.releasing and active - 1 == units.waiting
            units.put(unit)
            ran[name] = (plan, start, now)
            timeline.append({"op": name, "resource": unit, "start_s": start, "end_s": now})
            finished += 1
            active -= 1
            if done and name in done:
                done[name].succeed(now)
            nxt = satisfied(after[i])
            if len(nxt) == 1 and closed_form and active == 0:
                i = nxt[0]  # the one task it made ready runs alone: go on in this process
                active += 1
                continue
            if alone and (nxt or units.releasing):
                fork(unit, nxt, now)
            for j in nxt:
                ready(j)
            if lone:
                left_alone()
            return

    for i, n in enumerate(waiting):
        if n == 0:
            ready(i)
    eid_before = next(env._eid)  # SimPy numbers every scheduled event from one counter
    t0 = time.perf_counter()
    env.run()
    run.run_s = time.perf_counter() - t0
    run.events = next(env._eid) - eid_before
    if finished < len(tasks):
        missing = [t.name for t in tasks if t.name not in run.ran]
        raise DesignError(f"ops never ran (dependency cycle?): {', '.join(missing[:5])}")
    run.makespan_s = env.now
    return run

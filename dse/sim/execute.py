"""The execute pass: one SimPy executor over the machine's resources (units, memory buses,
SRAM ports; links later) running every task of a program by its plan.

A task waits for its dependencies, copies any prefetched tensors it reads first, takes the
first free unit among those the mapper allowed, and runs its op as the chunked pipeline of
dse/sim/pipeline.py. SimPy decides queuing and overlap; the plans decided every cost.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from dse.errors import DesignError
from dse.sim.cost import OpPlan
from dse.sim.machine import Machine
from dse.sim.map import Mapping
from dse.sim.pipeline import run_op
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


def execute(program: Program, mapping: Mapping, migrations: dict[str, list[OpPlan]], models: dict,
            max_chunks: int | None) -> Run:
    """Run every task on a fresh SimPy machine; raises DesignError if some never ran."""
    import time

    arch = program.arch
    env = simpy.Environment()
    machine = Machine(env, arch, models)
    done: dict[str, simpy.Event] = {t.name: env.event() for t in program.tasks}
    streamed = {d.task for t in program.tasks for d in t.deps if d.streaming}
    first_out: dict[str, simpy.Event] = {name: env.event() for name in streamed}
    pending = {name: list(plans) for name, plans in migrations.items()}
    run = Run(machine, 0.0, 0)

    def task_process(task):
        # a streaming dependency lets the task start on its producer's first tile of output;
        # it still cannot end before the producer has, plus one tile of its own
        deps = [first_out[d.task] if d.streaming else done[d.task] for d in task.deps]
        if deps:
            yield env.all_of(deps)
        for mig in pending.pop(task.name, []):  # first use of prefetched tensors: copy them over
            t0 = env.now
            yield env.process(run_op(env, machine, mig, max_chunks))
            run.migrations.append(mig)
            run.ran[mig.op.name] = (mig, t0, env.now)
            run.timeline.append({"op": mig.op.name, "resource": "dma", "start_s": t0, "end_s": env.now})
        allowed = mapping.choices[task.name]
        unit = yield machine.units.get(allowed)
        plan = mapping.plans[(task.name, unit)]
        start = env.now
        yield env.process(run_op(env, machine, plan, max_chunks, first_out.get(task.name)))
        upstream = [done[d.task] for d in task.deps if d.streaming]
        if upstream:
            yield env.all_of(upstream)
            ends = max(e.value for e in upstream) + plan.compute_s / plan.n_tiles
            if ends > env.now:
                yield env.timeout(ends - env.now)
        machine.unit_busy_s[unit] += plan.compute_s
        machine.units.put(unit)
        run.ran[task.name] = (plan, start, env.now)
        run.timeline.append({"op": task.name, "resource": unit, "start_s": start, "end_s": env.now})
        done[task.name].succeed(env.now)

    for task in program.tasks:
        env.process(task_process(task))
    eid_before = next(env._eid)  # SimPy numbers every scheduled event from one counter
    t0 = time.perf_counter()
    env.run()
    run.run_s = time.perf_counter() - t0
    run.events = next(env._eid) - eid_before
    missing = [n for n, e in done.items() if not e.triggered]
    if missing:
        raise DesignError(f"ops never ran (dependency cycle?): {', '.join(missing[:5])}")
    run.makespan_s = env.now
    return run

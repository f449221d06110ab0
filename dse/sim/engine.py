"""simulate(arch, workload) -> Result: one program, and a pipeline of passes over it.

    partition -> allocate -> map -> cost -> execute -> summarise

Each pass is a module of its own and owns one decision: ``partition`` (dse/sim/partition.py)
which chip runs what (one chip: everything); ``allocate`` (allocate.py) where every tensor
lives, and so whether the workload fits; ``map`` (map.py) which units may run each task and
which layers IMC tiles hold; ``cost`` (cost.py, with the compute kinds in compute/ and the
technology models in dse/tech/) what each task costs on each unit; ``execute`` (execute.py)
the SimPy run over units, buses and SRAM ports; ``summarise`` (summarise.py) the tables.
"""
from __future__ import annotations

import time

from dse import results as R
from dse.errors import DesignError
from dse.sim.allocate import Allocation, allocate, require_fit
from dse.sim.cost import Coster, migration_plans
from dse.sim.execute import execute
from dse.sim.map import imc_utilisation, map_tasks
from dse.sim.partition import partition
from dse.sim.program import Program, System, build_program
from dse.sim.summarise import op_rows, summary
from dse.spec.architecture import Architecture
from dse.tech.models import tier_model
from dse.workloads.ops import Workload

#: Default bound on chunks per op (events per op stay O(max_chunks)).
MAX_CHUNKS = 8


def _implausible_cause(arch: Architecture, exc: DesignError) -> DesignError:
    """A result out of the float range names the design field that took it there: the first
    one outside its plausible range (dse/spec/plausible.py), if any."""
    from dse.spec.plausible import plausibility_warnings
    from dse.spec.yaml_io import dotted

    causes = plausibility_warnings(arch, None)
    if not causes:
        return exc
    loc, message = causes[0]
    return DesignError(f"{message}, so {exc.field} {exc.message}", where=arch.name, field=dotted(loc))


def plan_memory(arch: Architecture, workload: Workload) -> Allocation:
    """The allocator's answer for a design and workload, without simulating (``fits_memory``)."""
    (program,) = partition(build_program(System.of(arch), workload))
    return allocate(program)


def simulate(arch: Architecture, workload: Workload, *, max_chunks: int | None = MAX_CHUNKS,
             streaming: bool = False, closed_form: bool = True) -> R.Result:
    """Run ``workload`` on ``arch``; ``max_chunks=None`` simulates every tile as its own event;
    ``streaming``: elementwise ops start on their producer's first tiles of output;
    ``closed_form=False``: every op event by event, even where it runs alone (same tables)."""
    t_start = time.perf_counter()
    (program,) = partition(build_program(System.of(arch), workload, streaming=streaming))
    alloc = allocate(program)
    require_fit(program, alloc)
    models = {m.name: tier_model(m) for m in arch.memories}
    coster = Coster(arch, models)
    mapping = map_tasks(program, alloc, coster)
    migrations = migration_plans(program, models)
    t_run = time.perf_counter()
    run = execute(program, mapping, migrations, models, max_chunks, closed_form)
    rows = op_rows(program, run)
    row = summary(program, alloc, run, models, rows)
    for unit, frac in imc_utilisation(arch, workload.ops, mapping.imc, mapping.imc_copies,
                                      mapping.crossbars).items():
        row[f"imc_utilisation_{unit}"] = frac
        row[f"imc_ops_{unit}"] = sum(1 for u in mapping.imc.values() if u == unit)
    row["sim_events"] = run.events
    try:
        result = R.Result(arch.name, workload.name, row, rows, run.timeline)
    except DesignError as exc:
        raise _implausible_cause(arch, exc) from None
    # wall-clock figures stay out of the tables, which must be identical run to run
    result.timing = {"plan_s": t_run - t_start, "run_s": run.run_s, "total_s": time.perf_counter() - t_start}
    return result


__all__ = ["MAX_CHUNKS", "Program", "plan_memory", "simulate"]

"""The summarise pass: per-op rows and the one summary row, by the metric names of results.py."""
from __future__ import annotations

from dse import results as R
from dse.sim.allocate import Allocation
from dse.sim.cost import OpPlan
from dse.sim.execute import Run
from dse.sim.program import PERSISTENT_ROLES, Program
from dse.spec.architecture import Architecture, component_leakage
from dse.tech.memory import AccessStats

#: Relative difference below which two resources' busy times are a tie for the run's bound:
#: far above float rounding (~1e-15 here) and far below any difference a design makes.
TIE = 1e-9


def op_row(arch: Architecture, plan: OpPlan, start: float, end: float, static: dict | None = None) -> dict:
    """One op's row; ``static``, if given, caches what depends on the plan's costs alone
    (shared by ops of one shape, whose plans share their cost dicts)."""
    key = id(plan.transfers)
    part = static.get(key) if static is not None else None
    if part is None or part[0] is not plan.transfers:
        op = plan.op
        times = {"compute": plan.unit_s or plan.compute_s, **plan.transfer_s()}
        reads, writes = plan.reads, plan.writes
        row = {"op": None, "kind": op.kind, "unit": plan.unit, "precision": op.precision, "start_s": 0.0,
               "end_s": 0.0, R.LATENCY: 0.0, "macs": plan.macs, "ops": op.ops, "compute_s": plan.compute_s,
               "n_tiles": plan.n_tiles, R.BOUND: max(times, key=lambda k: times[k]),
               "dynamic_energy_j": sum(plan.energy.values())}
        for m in arch.memories:
            row[R.bytes_read_col(m.name)] = reads.get(m.name, 0.0)
            row[R.bytes_written_col(m.name)] = writes.get(m.name, 0.0)
        part = (plan.transfers, row)
        if static is not None:
            static[key] = part
    row = part[1].copy()  # its columns in order, then this op's own
    row["op"] = plan.op.name
    row["start_s"] = start
    row["end_s"] = end
    row[R.LATENCY] = end - start
    return row


def op_rows(program: Program, run: Run) -> list[dict]:
    arch = program.arch
    static: dict[int, tuple] = {}
    ran = run.ran
    # most ops share a shape: its row is built once
    return [op_row(arch, *ran[name], static) for name in [t.name for t in program.tasks]
            + [m.op.name for m in run.migrations]]


def summary(program: Program, alloc: Allocation, run: Run, models: dict, rows: list[dict]) -> dict:
    """Totals of a run: time, throughput, energy by component and cause, busy fractions,
    bytes and peak occupancy per SRAM and tier, and what bound the workload (``rows``: the
    run's ``op_rows``, whose ops and MACs it adds up)."""
    arch, workload = program.arch, program.workload
    ran = run.ran
    plans = [ran[t.name][0] for t in program.tasks] + run.migrations
    makespan = run.makespan_s
    machine = run.machine
    total_ops = sum([r["ops"] for r in rows])
    energy: dict[str, float] = {c.name: 0.0 for c in arch.components()}
    details: dict[str, float] = {}
    tier_stats: dict[str, AccessStats] = {m.name: AccessStats() for m in arch.memories}
    # one pass over the plans; each total still adds its terms in plan order
    for p in plans:
        for comp, e in p.energy.items():
            energy[comp] += e
        if p.energy_detail:
            for key, e in p.energy_detail.items():
                details[R.energy_col(key)] = details.get(R.energy_col(key), 0.0) + e
        for tier, kind, nbytes, pattern, access in p.transfers:
            stats = tier_stats.get(tier)
            if stats is not None:
                models[tier].account(stats, nbytes, kind, pattern, access)
    dynamic = sum(energy.values())
    for c in arch.components():
        energy[c.name] += component_leakage(c) * makespan
    tier_extra: dict[str, float] = {}
    for m in arch.memories:
        model = models[m.name]
        for cause, power in model.static_power_w.items():
            energy[m.name] += power * makespan
            tier_extra[R.energy_col(f"{m.name}_{cause}")] = power * makespan
        stats = tier_stats[m.name]
        moved = stats.bytes_read + stats.bytes_written
        tier_extra[f"achieved_bandwidth_{m.name}_bps"] = moved / makespan if makespan else 0.0
        for key, value in model.extra_metrics(stats, makespan).items():
            tier_extra[f"{key}_{m.name}"] = value
    for role in PERSISTENT_ROLES:
        parts = alloc.role_split(role)
        if parts and (len(parts) > 1 or parts[0][0] != arch.tier_of(role)):
            tier_extra[f"spill_{role}"] = ", ".join(f"{t} {f:.0%}" for t, f in parts)
    total = sum(energy.values())
    row: dict = {"architecture": arch.name, "workload": workload.name, "samples": workload.samples}
    row[R.LATENCY] = makespan
    row[R.THROUGHPUT_OPS] = total_ops / makespan if makespan else 0.0
    row[R.THROUGHPUT_SAMPLES] = workload.samples / makespan if makespan else 0.0
    row[R.ENERGY] = total
    row[R.AVG_POWER] = total / makespan if makespan else 0.0
    row[R.TOPS_PER_W] = total_ops / total / 1e12 if total else 0.0
    row[R.AREA] = arch.area_mm2
    row[R.ENERGY_PER_SAMPLE] = total / workload.samples
    row["total_ops"] = total_ops
    row["macs"] = sum([r["macs"] for r in rows])
    row["dynamic_energy_j"] = dynamic
    row["static_energy_j"] = total - dynamic
    # what bound the workload: the resource busiest over the run
    busy = {"compute": 0.0}
    for u, b in machine.unit_busy_s.items():
        row[R.busy_col(u)] = b / makespan if makespan else 0.0
        busy["compute"] = max(busy["compute"], b)
    for name, b in machine.sram_busy_s.items():
        row[R.busy_col(name)] = b / makespan if makespan else 0.0
        busy[name] = b
    for name, bus in machine.buses.items():
        row[R.busy_col(name)] = bus.busy_s / makespan if makespan else 0.0
        busy[name] = bus.busy_s
        row[R.bytes_read_col(name)] = tier_stats[name].bytes_read
        row[R.bytes_written_col(name)] = tier_stats[name].bytes_written
    # Busy times within TIE of the busiest are a tie (float rounding differs between the closed
    # form and the event-by-event run). A unit's compute time already includes the wait for its
    # buffers' ports (cost.py: compute_s = max(compute, SRAM time)), so an SRAM or memory tied
    # with compute is what paces it: of tied resources, the first that is not compute is named.
    top = max(busy.values())
    tied = [k for k, b in busy.items() if b >= top * (1.0 - TIE)] if top > 0 else ["compute"]
    row[R.BOUND] = next((k for k in tied if k != "compute"), tied[0])
    for comp, e in energy.items():
        row[R.energy_col(comp)] = e
    row.update(tier_extra)
    row.update(details)
    for name in [s.name for s in arch.sram] + [m.name for m in arch.memories]:
        row[R.peak_bytes_col(name)] = alloc.peak_bytes.get(name, 0.0)
    row[R.CAPACITY_MARGIN] = alloc.margin_bytes
    return row

"""simulate(arch, workload) -> Result: the SimPy model of one chip running one workload."""
from __future__ import annotations

import time

import simpy

from dse import results as R
from dse.errors import DesignError
from dse.sim.machine import Machine
from dse.sim.pipeline import run_op
from dse.sim.tiling import MIN_TILE_BYTES, PIPELINE_TILES
from dse.sim.plan import OpPlan, Planner, allocate_imc_replicated, compatible_units, imc_utilisation
from dse.tech.models import tier_model
from dse.tech.memory import AccessStats
from dse.spec.architecture import Architecture, component_leakage
from dse.units import fmt
from dse.workloads.ops import Op, Workload

#: Default bound on chunks per op (events per op stay O(max_chunks)).
MAX_CHUNKS = 8


#: persistent roles, placed in this order (gradients are produced and consumed within a step)
SPILL_ORDER = ("weights", "kv_cache", "embeddings", "optimizer_state")


def role_bytes(workload: Workload) -> dict[str, float]:
    """Bytes each persistent role occupies: every tensor counted once (shared weights by
    their weight_id), inputs only (an op writing a persistent role updates it in place)."""
    seen: dict[tuple[str, str], float] = {}
    for op in workload.ops:
        for key, t in op.tensor_bytes().items():
            if key != "out" and t["role"] in SPILL_ORDER:
                seen[(t["role"], op.tensor_id(key))] = t["bytes"]
    out: dict[str, float] = {}
    for (role, _), b in seen.items():
        out[role] = out.get(role, 0.0) + b
    emb = workload.params.get("embedding_table_bytes") if isinstance(workload.params, dict) else None
    if emb:
        out["embeddings"] = max(out.get("embeddings", 0.0), float(emb))
    return out


def plan_placement(arch: Architecture, workload: Workload) -> dict[str, list[tuple[str, float]]]:
    """Where each persistent role lives: its tier, spilling into the next tiers when full.

    Roles are placed in SPILL_ORDER; a role larger than what is left of its tier puts
    the rest on the following memory tiers in file order. Raises DesignError when
    the roles exceed every tier together.
    """
    free = {m.name: m.capacity for m in arch.memories}
    order = [m.name for m in arch.memories]
    sizes = role_bytes(workload)
    split: dict[str, list[tuple[str, float]]] = {}
    for role in SPILL_ORDER:
        need = sizes.get(role, 0.0)
        if not need:
            continue
        where = arch.tier_of(role)
        sram = arch.sram_named(where)
        if sram is not None:
            if need <= sram.capacity:
                continue
            where = order[0]  # does not fit on chip: off-chip, first tier
        start = order.index(where)
        left, parts = need, []
        for tier in order[start:] + order[:start]:
            take = min(left, free[tier])
            if take > 0:
                parts.append((tier, take / need))
                free[tier] -= take
                left -= take
            if left <= 0:
                break
        if left > 1e-9 * need:
            tiers = ", ".join(f"{m.name}: {fmt(m.capacity, 'bytes')}" for m in arch.memories)
            raise DesignError(f"{role.replace('_', ' ')} of workload '{workload.name}' ({fmt(need, 'bytes')}) "
                              f"exceed{'' if role in ('weights', 'embeddings') else 's'} every memory tier "
                              f"({tiers})")
        split[role] = parts
    return split


def plan_migrations(arch: Architecture, workload: Workload, models: dict) -> dict[str, list[OpPlan]]:
    """Copies of prefetched tensors, keyed by the op that reads them first."""
    if not arch.prefetch:
        return {}
    by_role = {pf.role: pf for pf in arch.prefetch}
    out: dict[str, list[OpPlan]] = {}
    copied: set[str] = set()
    for op in workload.ops:
        for key, t in op.tensor_bytes().items():
            pf = by_role.get(t["role"])
            ident = op.tensor_id(key)
            if pf is None or key == "out" or ident in copied:
                continue
            copied.add(ident)
            tiles = max(1, min(PIPELINE_TILES, int(t["bytes"] // MIN_TILE_BYTES)))
            mig = OpPlan(Op(f"{op.name}.prefetch_{key}", "vector", precision=op.precision, tag="prefetch"),
                         "dma", 0.0, tiles)
            mig.migration(t["bytes"], pf.source, pf.target, models)
            out.setdefault(op.name, []).append(mig)
    return out


def simulate(arch: Architecture, workload: Workload, *, max_chunks: int | None = MAX_CHUNKS) -> R.Result:
    """Run ``workload`` on ``arch``; ``max_chunks=None`` simulates every tile as its own event."""
    t_start = time.perf_counter()
    spill = plan_placement(arch, workload)
    models = {m.name: tier_model(m) for m in arch.memories}
    planner = Planner(arch, models, spill)
    choices: dict[str, list[str]] = {}
    plans: dict[tuple[str, str], OpPlan] = {}
    spilled: dict[str, str] = {}  # op -> memory tier its activation output went to
    imc_alloc = allocate_imc_replicated(arch, workload.ops)
    imc = {name: unit for name, (unit, _) in imc_alloc.items()}
    planner.imc_copies = {name: copies for name, (_, copies) in imc_alloc.items()}
    for op in workload.ops:
        units = compatible_units(arch, op, imc)
        if not units:
            raise DesignError(f"no compute unit can run op '{op.name}' ({op.kind})")
        # an activation a producer wrote off chip is read back from there (not from SRAM)
        input_tier = next((spilled[d] for d in op.deps if d in spilled), None)
        for u in units:
            plans[(op.name, u)] = planner.plan(op, u, input_tier)
        imc_unit = next((u for u in arch.compute if u.name == imc.get(op.name)), None)
        if imc_unit is not None and imc_unit.use == "faster":
            # crossbars only when they beat the digital units on this layer
            digital = [u for u in compatible_units(arch, op) if u != imc[op.name]]
            for u in digital:
                plans[(op.name, u)] = planner.plan(op, u, input_tier)
            best = min((plans[(op.name, u)].compute_s for u in digital), default=float("inf"))
            if best < plans[(op.name, imc[op.name])].compute_s:
                units = digital
                del imc[op.name]
        choices[op.name] = units
        written = [t for t, kind, *_ in plans[(op.name, units[0])].transfers if kind == "write"]
        if written and op.out_role == "activations" and "out" not in op.on_chip:
            spilled[op.name] = written[0]

    env = simpy.Environment()
    machine = Machine(env, arch, models)
    done: dict[str, simpy.Event] = {op.name: env.event() for op in workload.ops}
    rows: dict[str, dict] = {}
    timeline: list[dict] = []

    def op_process(op: Op):
        deps = [done[d] for d in op.deps]
        if deps:
            yield env.all_of(deps)
        for mig in migrations.pop(op.name, []):  # first use of prefetched tensors: copy them over
            t0 = env.now
            yield env.process(run_op(env, machine, mig, max_chunks))
            migration_plans.append(mig)
            rows[mig.op.name] = _op_row(arch, mig, t0, env.now)
            timeline.append({"op": mig.op.name, "resource": "dma", "start_s": t0, "end_s": env.now})
        allowed = choices[op.name]
        unit = yield machine.units.get(lambda u: u in allowed)
        plan = plans[(op.name, unit)]
        start = env.now
        yield env.process(run_op(env, machine, plan, max_chunks))
        machine.unit_busy_s[unit] += plan.compute_s
        machine.units.put(unit)
        rows[op.name] = _op_row(arch, plan, start, env.now)
        timeline.append({"op": op.name, "resource": unit, "start_s": start, "end_s": env.now})
        done[op.name].succeed()

    migrations = plan_migrations(arch, workload, models)
    migration_plans: list[OpPlan] = []
    for op in workload.ops:
        env.process(op_process(op))
    eid_before = _event_count(env)
    t_run = time.perf_counter()
    env.run()
    run_s = time.perf_counter() - t_run
    events = _event_count(env) - eid_before
    missing = [n for n, e in done.items() if not e.triggered]
    if missing:
        raise DesignError(f"ops never ran (dependency cycle?): {', '.join(missing[:5])}")
    makespan = env.now
    op_rows = [rows[op.name] for op in workload.ops]
    op_rows += [rows[m.op.name] for m in migration_plans]
    used = [plans[(op.name, rows[op.name]["unit"])] for op in workload.ops] + migration_plans
    summary = _summary(arch, workload, machine, used, makespan, models, spill)
    for unit, frac in imc_utilisation(arch, workload.ops, imc, planner.imc_copies).items():
        summary[f"imc_utilisation_{unit}"] = frac
        summary[f"imc_ops_{unit}"] = sum(1 for u in imc.values() if u == unit)
    summary["sim_events"] = events
    result = R.Result(arch.name, workload.name, summary, op_rows, timeline)
    # wall-clock figures stay out of the tables, which must be identical run to run
    result.timing = {"plan_s": t_run - t_start, "run_s": run_s, "total_s": time.perf_counter() - t_start}
    return result


def _event_count(env: simpy.Environment) -> int:
    # SimPy numbers every scheduled event from one counter; reading it costs one number.
    return next(env._eid)


def _op_row(arch: Architecture, plan: OpPlan, start: float, end: float) -> dict:
    op = plan.op
    times = {"compute": plan.unit_s or plan.compute_s, **plan.transfer_s()}
    bound = max(times, key=lambda k: times[k])
    row = {
        "op": op.name, "kind": op.kind, "unit": plan.unit, "precision": op.precision,
        "start_s": start, "end_s": end, R.LATENCY: end - start,
        "macs": plan.macs, "ops": op.ops, "compute_s": plan.compute_s, "n_tiles": plan.n_tiles,
        R.BOUND: bound, "dynamic_energy_j": sum(plan.energy.values()),
    }
    for m in arch.memories:
        row[R.bytes_read_col(m.name)] = plan.reads.get(m.name, 0.0)
        row[R.bytes_written_col(m.name)] = plan.writes.get(m.name, 0.0)
    return row


def _summary(arch: Architecture, workload: Workload, machine: Machine, plans: list[OpPlan],
             makespan: float, models: dict, spill: dict) -> dict:
    total_ops = sum(p.op.ops for p in plans)
    energy: dict[str, float] = {c.name: 0.0 for c in arch.components()}
    for p in plans:
        for comp, e in p.energy.items():
            energy[comp] += e
    dynamic = sum(energy.values())
    details: dict[str, float] = {}
    for p in plans:
        for key, e in p.energy_detail.items():
            details[R.energy_col(key)] = details.get(R.energy_col(key), 0.0) + e
    for c in arch.components():
        energy[c.name] += component_leakage(c) * makespan
    tier_extra: dict[str, float] = {}
    tier_stats: dict[str, AccessStats] = {}
    for m in arch.memories:
        model = models[m.name]
        for cause, power in model.static_power_w.items():
            energy[m.name] += power * makespan
            tier_extra[R.energy_col(f"{m.name}_{cause}")] = power * makespan
        stats = tier_stats[m.name] = AccessStats()
        for p in plans:
            for tier, kind, nbytes, pattern, access in p.transfers:
                if tier == m.name:
                    model.account(stats, nbytes, kind, pattern, access)
        moved = stats.bytes_read + stats.bytes_written
        tier_extra[f"achieved_bandwidth_{m.name}_bps"] = moved / makespan if makespan else 0.0
        for key, value in model.extra_metrics(stats, makespan).items():
            tier_extra[f"{key}_{m.name}"] = value
    for role, parts in spill.items():
        if len(parts) > 1 or parts[0][0] != arch.tier_of(role):
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
    row["macs"] = sum(p.macs for p in plans)
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
    row[R.BOUND] = max(busy, key=lambda k: busy[k])
    for comp, e in energy.items():
        row[R.energy_col(comp)] = e
    row.update(tier_extra)
    row.update(details)
    return row

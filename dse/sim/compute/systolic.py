"""Systolic arrays: SCALE-Sim's fold timing per dataflow (dse/sim/systolic.py), the fastest of
the array's dataflows per GEMM; elementwise work runs one op per column per cycle."""
from __future__ import annotations

from dse.errors import DesignError
from dse.sim import systolic
from dse.sim.cost import OpPlan, add


class SystolicKind:
    def rank(self, unit, op) -> int | None:
        if op.kind == "vector":
            return 1                      # a SIMD row when no vector unit exists
        return 0 if op.precision in unit.macs_per_cycle else 1

    def plan(self, coster, unit, ctx) -> OpPlan:
        op = ctx.op
        if op.kind == "vector":  # a systolic array used as a SIMD row: one op per column per cycle
            plan = coster.vector_plan(ctx, unit.name, unit.cols * unit.count * unit.clock)
            add(plan.energy, unit.name, op.vector_ops * max(unit.energy_per_mac.values(), default=0.0))
            return plan
        m, n, k, reps = op.gemm()
        rate = unit.macs_per_cycle.get(op.precision)
        if rate is None:
            raise DesignError(f"compute unit '{unit.name}' does not support {op.precision} "
                              f"(supports {', '.join(unit.macs_per_cycle)}) for op '{op.name}'; "
                              f"run the workload at a supported precision (dse run ... --precision "
                              f"{next(iter(unit.macs_per_cycle))})")
        # the fastest of the unit's dataflows for this shape (ties: the first listed)
        dataflow = min(unit.dataflows, key=lambda d: systolic.gemm_cycles(
            unit.rows, unit.cols, m, n, k, d, reps, unit.count, rate))
        cycles = systolic.gemm_cycles(unit.rows, unit.cols, m, n, k, dataflow, reps, unit.count, rate)
        min_kt, min_nt = (unit.rows, unit.cols) if dataflow != "input_stationary" else (unit.rows, 1)
        reads = systolic.sram_reads(unit.rows, unit.cols, m, n, k, dataflow)
        plan = coster.gemm_plan(ctx, unit.name, cycles / unit.clock, min_kt, min_nt, reads)
        add(plan.energy, unit.name, op.macs * unit.energy_per_mac.get(op.precision, 0.0))
        return plan

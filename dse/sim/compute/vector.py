"""Vector units: SIMD lanes at their peak rate; a GEMM runs at 2 ops per MAC when no array can."""
from __future__ import annotations

from dse.sim.cost import OpPlan, add


class VectorKind:
    def rank(self, unit, op) -> int | None:
        return 0 if op.kind == "vector" else 2

    def plan(self, coster, unit, ctx) -> OpPlan:
        op = ctx.op
        if op.kind == "vector":
            plan = coster.vector_plan(ctx, unit.name, unit.peak_ops_per_s)
            add(plan.energy, unit.name, op.vector_ops * unit.energy_per_op)
            return plan
        m, n, k, _ = op.gemm()
        plan = coster.gemm_plan(ctx, unit.name, 2.0 * op.macs / unit.peak_ops_per_s, 1, 1, (m * k * n, k * n * m))
        add(plan.energy, unit.name, 2.0 * op.macs * unit.energy_per_op)
        return plan

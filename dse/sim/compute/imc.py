"""In-memory-compute tiles: weights sit in crossbars; input vectors stream in bit-serially and
ADCs read the columns (dse/tech/imc.py, ISAAC data). Which layers a tile holds, and how many
copies, is the mapper's decision (dse/sim/map.py)."""
from __future__ import annotations

from math import ceil

from dse.sim.cost import OpPlan, add


class ImcKind:
    def rank(self, unit, op) -> int | None:
        return None                       # only the layers the mapper assigns to the tile

    def plan(self, coster, unit, ctx) -> OpPlan:
        from dse.tech.imc import imc_gemm_cost, program_cost  # IMC designs only (its import is ~3 ms)

        op = ctx.op
        params = unit.params()
        m, n, k, reps = op.gemm()
        bits = int(8 * op.elem_bytes)
        copies = coster.imc_copies.get(op.name, 1)
        key = (unit.name, m, n, k, bits)  # (a layer's plans differ by where its operands are, not by this)
        cost = coster.imc_costs.get(key)
        if cost is None:
            cost = coster.imc_costs[key] = imc_gemm_cost(params, m, n, k, weight_bits=bits, input_bits=bits)
        # copies of the weights take ceil(M / copies) input vectors each, side by side
        time_s = cost.time_s * ceil(m / copies) / m
        plan = OpPlan(op, unit.name, time_s, 1, macs=float(m * n * k * reps))  # (op.macs)
        # groups of a grouped conv sit on their own crossbars and run side by side;
        # leakage is charged once for the whole run by the static ledger, not per op
        parts = {key: value * reps for key, value in cost.energy().items() if key != "leakage"}
        if not unit.weights_resident:
            e_prog, t_prog, _ = program_cost(params, k, n, weight_bits=bits)
            parts["programming"] = e_prog * reps * copies
            plan.compute_s += t_prog
        for key, value in parts.items():
            plan.energy_detail[f"{unit.name}_{key}"] = value
        add(plan.energy, unit.name, sum(parts.values()))
        plan.n_tiles = min(m, 64)
        for key, t in ctx.tensors.items():
            if key == "b":
                if not unit.weights_resident:
                    coster.traffic(plan, ctx, key, t["bytes"])  # data to program
                continue
            coster.traffic(plan, ctx, key, t["bytes"])
            coster.stage(plan, ctx, key, t["bytes"], t["bytes"])
        return plan

"""Systolic arrays: SCALE-Sim's fold timing per dataflow (dse/sim/systolic.py), the fastest of
the array's dataflows per GEMM; elementwise work runs one op per column per cycle.

Grouped and depthwise convolutions are packed the way accelerators map them: ``p`` groups
side by side as one block-diagonal GEMM (p*K reduction rows, p*N filters), so a depthwise
3x3 layer fills 28 groups of 9 rows into a 256-row array instead of running each channel
as a fold of its own; the fold count drops from G to ceil(G / p). Only the real MACs are
charged energy (the zero blocks are assumed gated). The mapper also offers such layers to
the vector units and keeps whichever is faster (dse/sim/map.py).
"""
from __future__ import annotations

from math import ceil

from dse.errors import DesignError
from dse.sim import systolic
from dse.sim.cost import OpPlan, add

#: Register accesses of one MAC in a PE: read the two operands it multiplies, read and write
#: the partial sum it accumulates (the accounting of Chen, Emer, Sze, "Eyeriss: A Spatial
#: Architecture for Energy-Efficient Dataflow for CNNs", ISCA 2016, Sec. V).
REGISTER_ACCESSES_PER_MAC = 4


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
        # the fastest of the unit's dataflows and group packings for this shape (ties: the first)
        packings = sorted({1, packing(unit.rows, unit.cols, n, k)}) if reps > 1 else (1,)
        options = [(array_cycles(unit, m, n * p, k * p, d, -(-reps // p), rate), i, d, p)
                   for i, d in enumerate(unit.dataflows) for p in packings]
        cycles, _, dataflow, p = min(options) if len(options) > 1 else options[0]
        min_kt, min_nt = (unit.rows, unit.cols) if dataflow != "input_stationary" else (unit.rows, 1)
        ra, rb = systolic.sram_reads(unit.rows, unit.cols, m, n * p, k * p, dataflow)
        folds = -(-reps // p)
        # element reads per group, as gemm_plan multiplies by the op's own group count
        reads = (ra * folds / reps, rb * folds / reps)
        plan = coster.gemm_plan(ctx, unit.name, cycles / unit.clock, min_kt, min_nt, reads)
        macs = m * n * k * reps  # (op.macs)
        add(plan.energy, unit.name, macs * unit.energy_per_mac.get(op.precision, 0.0))
        if unit.register_file_energy is not None:
            rf = macs * REGISTER_ACCESSES_PER_MAC * unit.register_file_energy
            plan.energy_detail[f"{unit.name}_register_file"] = rf
            add(plan.energy, unit.name, rf)
        return plan


def array_cycles(unit, m: int, n: int, k: int, dataflow: str, repeats: int, rate: float) -> float:
    """SCALE-Sim's cycles for the GEMMs, less the stationary-tile loads that double buffering
    hides: with ``weight_buffers >= 2`` the next fold's tile (R cycles to shift in) loads while
    the current fold streams its T rows, so each fold after an array's first hides min(R, T)."""
    cycles = systolic.gemm_cycles(unit.rows, unit.cols, m, n, k, dataflow, repeats, unit.count, rate)
    if unit.weight_buffers < 2 or dataflow == "output_stationary":
        return cycles
    s_r, s_c, t = systolic.MAPPING[dataflow](m, n, k)
    folds = ceil(ceil(s_r / unit.rows) * ceil(s_c / unit.cols) * repeats / unit.count)
    stream = t if rate == 1.0 else ceil(t / rate)
    return cycles - (folds - 1) * min(unit.rows, stream)


def packing(rows: int, cols: int, n: int, k: int) -> int:
    """Groups of a grouped convolution (each a K x N weight block) that fit side by side on
    the diagonal of a rows x cols array."""
    return max(1, min(rows // max(k, 1), cols // max(n, 1)))

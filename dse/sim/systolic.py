"""Stall-free timing of a systolic array, equal to SCALE-Sim 3.0.0's.

Samajdar et al., "A Systematic Methodology for Characterizing Scalability of DNN
Accelerators using SCALE-Sim", ISPASS 2020: a GEMM is mapped onto the array as
an S_R x T operand streamed against a T x S_C operand, and the array is folded
ceil(S_R/R) * ceil(S_C/C) times; a partial fold costs a full fold. One fold of
an R x C array takes

    weight / input stationary: 2R + C + T - 2 cycles (preload the stationary
                               operand down the rows, then stream T and drain)
    output stationary:          R + C + T - 2 cycles (both operands stream in
                               skewed; the outputs stay put, nothing preloads)

Mapping per dataflow (M output rows, N output columns, K reduction):
    output stationary: S_R = M, S_C = N, T = K
    weight stationary: S_R = K, S_C = N, T = M
    input stationary:  S_R = K, S_C = M, T = N

Convention: SCALE-Sim's COMPUTE_REPORT "Total Cycles" is the index of the last
cycle, one less than the count returned here (tests/data/scalesim_3.0.0.yaml
holds its output for 12 GEMMs x 3 dataflows x 2 arrays; dse = SCALE-Sim + 1).
"""
from __future__ import annotations

from math import ceil

MAPPING = {
    "output_stationary": lambda m, n, k: (m, n, k),
    "weight_stationary": lambda m, n, k: (k, n, m),
    "input_stationary": lambda m, n, k: (k, m, n),
}


def fill_drain_cycles(rows: int, cols: int, dataflow: str) -> int:
    """Cycles of one fold that do not stream the T operand (preload, skew and drain)."""
    preload = 0 if dataflow == "output_stationary" else rows
    return preload + rows + cols - 2


def gemm_cycles(rows: int, cols: int, m: int, n: int, k: int, dataflow: str,
                repeats: int = 1, arrays: int = 1, rate: float = 1.0) -> float:
    """Cycles for ``repeats`` independent M x N x K GEMMs on ``arrays`` identical arrays.

    Folds are independent, so they are dealt round-robin to the arrays; the
    busiest array sets the time. ``rate`` is MACs per PE per cycle at the operand
    precision: streaming the T operand rows takes T / rate cycles, while fill and
    drain are pipeline depth and do not change with precision. At rate 1 this is
    SCALE-Sim 3.0.0's count (plus its -1 convention, see the module docstring).
    """
    s_r, s_c, t = MAPPING[dataflow](m, n, k)
    total_folds = ceil(s_r / rows) * ceil(s_c / cols) * repeats
    per_fold = fill_drain_cycles(rows, cols, dataflow) + (t if rate == 1.0 else ceil(t / rate))
    return ceil(total_folds / arrays) * per_fold


def sram_reads(rows: int, cols: int, m: int, n: int, k: int, dataflow: str) -> tuple[int, int]:
    """Elements of (a[M,K], b[K,N]) the array reads from its buffer for one GEMM.

    The stationary operand is read once; the streamed one is re-read for every
    fold along the other dimension.
    """
    if dataflow == "weight_stationary":
        return m * k * ceil(n / cols), k * n
    if dataflow == "output_stationary":
        return m * k * ceil(n / cols), k * n * ceil(m / rows)
    # input stationary: a is held in the array, b is streamed past each fold of M
    return m * k, k * n * ceil(m / cols)

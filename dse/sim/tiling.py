"""Cutting a GEMM into tiles that fit an SRAM, and the off-chip traffic that follows.

Loop nest at the SRAM level: output tiles Mt x Nt accumulate over K in steps of
Kt. An operand whose tile index does not change between consecutive iterations
stays in SRAM and is not fetched again. Two loop orders are tried (m outer and
n outer) over power-of-two tile sizes; the tiling with the least traffic wins
(ties: fewest tiles). Only operands that stream from off-chip take buffer space:
double-buffered tiles of every streamed operand must fit in ``free_bytes``.
Among the tilings with the least traffic, the fewest tiles that still give the
double-buffered pipeline PIPELINE_TILES stages to overlap wins (a single huge
tile would serialise load, compute and store).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import ceil

import numpy as np

#: tiles an op is cut into at least (when it is that large), so load, compute and store overlap
PIPELINE_TILES = 64
#: smallest tile worth a transfer of its own (a DMA descriptor moving less is overhead-bound);
#: the planner raises it to the latency x bandwidth of the tier, so that two tiles in flight
#: (double buffering) cover the memory's latency
MIN_TILE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Tiling:
    mt: int
    nt: int
    kt: int
    n_tiles: int
    #: how many times each operand is fetched (1 = compulsory traffic only)
    reads_a: int
    reads_b: int


def _candidates(d: int, floor: int = 1) -> np.ndarray:
    vals = {d}
    v = d
    while v > floor:
        v = max(floor, ceil(v / 2))
        vals.add(v)
    return np.array(sorted(vals), dtype=np.int64)


@lru_cache(maxsize=8192)
def tile_gemm(m: int, n: int, k: int, elem_bytes: float, free_bytes: float,
              stream_a: bool, stream_b: bool, stream_out: bool,
              min_kt: int = 1, min_nt: int = 1, min_tile_bytes: float = MIN_TILE_BYTES) -> Tiling | None:
    """Best tiling of one M x N x K GEMM, or None when even the smallest tile does not fit.

    ``min_kt``/``min_nt`` are the smallest useful tile (one fold of the array).
    """
    if not (stream_a or stream_b or stream_out):
        return Tiling(m, n, k, 1, 1, 1)
    min_kt, min_nt = min(min_kt, k), min(min_nt, n)
    M = _candidates(m)[:, None, None]
    N = _candidates(n, min_nt)[None, :, None]
    K = _candidates(k, min_kt)[None, None, :]
    need = 2.0 * elem_bytes * (stream_a * M * K + stream_b * K * N + stream_out * M * N)
    fits = need <= free_bytes
    if not fits.any():
        return None
    tm, tn, tk = -(-m // M), -(-n // N), -(-k // K)  # ceil divisions
    full_k = K == k
    # m outer, n middle, k inner: a[m, :] stays if Kt == K; b is refetched per m-tile
    a1 = np.where(full_k, 1, tn)
    b1 = np.where(full_k & (N == n), 1, tm)
    # n outer: b[:, n] stays if Kt == K; a refetched per n-tile
    b2 = np.where(full_k, 1, tm)
    a2 = np.where(full_k & (M == m), 1, tn)
    size_a, size_b = m * k * stream_a, k * n * stream_b
    t1 = a1 * size_a + b1 * size_b
    t2 = a2 * size_a + b2 * size_b
    order1 = t1 <= t2
    traffic = np.where(order1, t1, t2).astype(float)
    tiles = np.broadcast_to(tm * tn * tk, traffic.shape)
    traffic = np.where(fits, traffic, np.inf)
    # least traffic, then the fewest tiles that still fill the pipeline; lexsort keys go last-primary
    streamed = elem_bytes * (stream_a * m * k + stream_b * k * n + stream_out * m * n)
    target = max(1, min(PIPELINE_TILES, int(streamed // min_tile_bytes)))
    enough = np.where(tiles >= target, tiles, np.int64(2**62) - tiles)
    flat = np.lexsort((enough.ravel(), traffic.ravel()))[0]
    i, j, l = np.unravel_index(flat, traffic.shape)
    o1 = bool(np.broadcast_to(order1, traffic.shape)[i, j, l])
    ra = int(np.broadcast_to(a1 if o1 else a2, traffic.shape)[i, j, l])
    rb = int(np.broadcast_to(b1 if o1 else b2, traffic.shape)[i, j, l])
    mt, nt, kt = int(M[i, 0, 0]), int(N[0, j, 0]), int(K[0, 0, l])
    return Tiling(mt, nt, kt, int(tiles[i, j, l]), ra, rb)


@lru_cache(maxsize=4096)
def tile_vector(elements: int, bytes_per_element: float, free_bytes: float,
                min_tile_bytes: float = MIN_TILE_BYTES) -> int | None:
    """Number of tiles for a streaming elementwise op (double-buffered in and out)."""
    if bytes_per_element <= 0:
        return 1
    per_tile = int(free_bytes // (2.0 * bytes_per_element))
    if per_tile < 1:
        return None
    target = min(PIPELINE_TILES, elements, int(elements * bytes_per_element // min_tile_bytes))
    return max(ceil(elements / per_tile), target, 1)

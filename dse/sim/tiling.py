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

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from math import ceil

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


#: Tile grids searched in pure Python before the search moves to numpy. Python costs about
#: 0.5 us per candidate tiling and numpy about 0.1 us plus 70 us a call, but importing numpy
#: costs ~90 ms of CPU: a whole ResNet-50 plans ~2 ms of grids, so `dse run` never imports it,
#: while a workload with thousands of large distinct GEMMs spends at most this budget
#: (~50 ms) in Python before numpy takes over. Both searches give the same tiling.
PYTHON_SEARCH_BUDGET = 100_000
_python_searched = 0


#: candidate tile sizes by (dimension, floor): many GEMMs of a network share a dimension
_candidate_memo: dict[tuple[int, int], tuple[int, ...]] = {}
#: a GEMM (all tile_gemm takes but the free bytes) -> (free bytes searched, buffer bytes its
#: answer needs, the answer) of every search made for it
_searched: dict[tuple, list[tuple[float, float, "Tiling | None"]]] = {}
#: GEMMs kept in ``_searched`` (a long sweep meets new shapes with every design: bounded, as
#: tile_gemm's own cache is; past it the memo starts again)
SEARCHED_MAX = 8192


def _candidates(d: int, floor: int = 1) -> tuple[int, ...]:
    out = _candidate_memo.get((d, floor))
    if out is None:
        vals = [d]
        v = d
        while v > floor:  # (strictly falling: no repeats, and reversed, ascending)
            v = max(floor, -(-v // 2))
            vals.append(v)
        out = _candidate_memo[(d, floor)] = tuple(reversed(vals))
    return out


@lru_cache(maxsize=8192)
def tile_gemm(m: int, n: int, k: int, elem_bytes: float, free_bytes: float,
              stream_a: bool, stream_b: bool, stream_out: bool,
              min_kt: int = 1, min_nt: int = 1, min_tile_bytes: float = MIN_TILE_BYTES) -> Tiling | None:
    """Best tiling of one M x N x K GEMM, or None when even the smallest tile does not fit.

    ``min_kt``/``min_nt`` are the smallest useful tile (one fold of the array).

    The same GEMM beside less free buffer has the same best tiling while that tiling still
    fits (the tilings that fit are then a subset holding the best, and the first in order
    among the best), and none where none fitted; beside more, the same where every tiling
    fitted already (the whole GEMM did). Such a search is answered by an earlier one (the
    blocks of a ResNet stage differ only by what else is resident).
    """
    global _python_searched
    if not (stream_a or stream_b or stream_out):
        return Tiling(m, n, k, 1, 1, 1)
    gemm = (m, n, k, elem_bytes, stream_a, stream_b, stream_out, min_kt, min_nt, min_tile_bytes)
    earlier = _searched.get(gemm)
    if earlier is None:
        if len(_searched) >= SEARCHED_MAX:
            _searched.clear()
        earlier = _searched[gemm] = []
    for searched, need, found in earlier:
        if need <= free_bytes <= searched:
            return found
    min_kt, min_nt = min(min_kt, k), min(min_nt, n)
    grid = (_candidates(m), _candidates(n, min_nt), _candidates(k, min_kt))
    streamed = elem_bytes * (stream_a * m * k + stream_b * k * n + stream_out * m * n)
    target = max(1, min(PIPELINE_TILES, int(streamed // min_tile_bytes)))
    size = len(grid[0]) * len(grid[1]) * len(grid[2])
    search = _search_numpy
    if _python_searched + size <= PYTHON_SEARCH_BUDGET:
        _python_searched += size
        search = _search_python
    found = search(m, n, k, elem_bytes, free_bytes, stream_a, stream_b, stream_out, grid, target)
    # the buffer a tiling needs, by the very expression the searches test against free bytes
    twice = 2.0 * elem_bytes
    need = -float("inf") if found is None else \
        twice * (stream_a * found.mt * found.kt + stream_b * found.kt * found.nt + stream_out * found.mt * found.nt)
    # where the whole GEMM fits, every tiling did: more free bytes change nothing
    whole = twice * (stream_a * m * k + stream_b * k * n + stream_out * m * n)
    earlier.append((float("inf") if whole <= free_bytes else free_bytes, need, found))
    return found


def _search_python(m: int, n: int, k: int, elem_bytes: float, free_bytes: float,
                   stream_a: bool, stream_b: bool, stream_out: bool,
                   grid: tuple[list[int], list[int], list[int]], target: int) -> Tiling | None:
    """The search of :func:`_search_numpy` in plain Python, with the same answer: the least
    (traffic, pipeline fill) key, the first in (Mt, Nt, Kt) order among equals.

    Candidates are visited last to first and a key replaces the best when it is no greater,
    so the first in order wins ties; large tiles come first, which makes the bound below
    bite early. For a tile pair (Mt, Nt) the full-K tiling moves the least traffic, and no
    tiling of the pair can have fewer tiles than the full-K one: a pair whose (traffic,
    fill) bound exceeds the best key is skipped. K-tiles that fit are a prefix of the
    candidates (the buffer need grows with Kt) and all move the same traffic."""
    if stream_b and not (stream_a or stream_out):
        found = _weights_only(m, n, k, elem_bytes, free_bytes, grid, target)
        if found is not None:
            return found
    size_a, size_b = m * k * stream_a, k * n * stream_b
    Ks = grid[2]  # ascending, k last
    partial = [(K, -(-k // K)) for K in Ks[:-1]]
    twice = 2.0 * elem_bytes
    best_key: tuple[float, int] = (float("inf"), 2**63)
    best = None
    for M in reversed(grid[0]):
        tm = -(-m // M)
        for N in reversed(grid[1]):
            tn = -(-n // N)
            # K = k: m outer keeps a[m, :], n outer keeps b[:, n]
            b1 = 1 if N == n else tm
            a2 = 1 if M == m else tn
            t1, t2 = size_a + b1 * size_b, a2 * size_a + size_b
            order1 = t1 <= t2
            t_full = float(t1 if order1 else t2)
            tmn = tm * tn
            if (t_full, tmn if tmn >= target else target) > best_key:
                continue
            out_elems = stream_out * M * N
            fit = 0
            for K in Ks:
                if not twice * (stream_a * M * K + stream_b * K * N + out_elems) <= free_bytes:
                    break
                fit += 1
            if fit == len(Ks):
                key = (t_full, tmn if tmn >= target else 2**62 - tmn)
                if key <= best_key:
                    best_key, best = key, (M, N, k, tmn, 1 if order1 else a2, b1 if order1 else 1)
            if partial and fit:  # K < k: both loop orders refetch a per n-tile and b per m-tile
                t_part = float(tn * size_a + tm * size_b)
                if t_part <= best_key[0]:
                    for K, tk in reversed(partial[:fit]):
                        tiles = tmn * tk
                        key = (t_part, tiles if tiles >= target else 2**62 - tiles)
                        if key <= best_key:
                            best_key, best = key, (M, N, K, tiles, tn, tm)
    if best is None:
        return None
    return Tiling(*best)


def _weights_only(m: int, n: int, k: int, elem_bytes: float, free_bytes: float,
                  grid: tuple[list[int], list[int], list[int]], target: int) -> Tiling | None:
    """The search's answer where only the weights (b) stream, if some tiling reads them once:
    then the answer is one of those. A full-K tiling (Kt = K) reads b once whatever Mt (the
    tile of b is kept while M tiles pass, or every M tile reads its own), and needs 2 Kt Nt
    elements of buffer; a K-split one reads b once only with Mt = M. Among them the fewest
    tiles that fill the pipeline win, then the first in (Mt, Nt, Kt) order; None where none
    fits (the general search then finds a tiling that reads b more than once, or none).

    For one Nt, the tile counts fall as Mt (or Kt) grows: those that fill the pipeline
    (tiles >= target) are a prefix of the candidates, and the best of the prefix is its
    fewest tiles, the first candidate with its last tile count; where the prefix is empty,
    the most tiles, the first candidate. So each Nt costs two bisections, not a scan."""
    twice = 2.0 * elem_bytes
    Ms, Ns, Ks = grid
    Ks = Ks[:-1]  # (the K-split candidates)
    # the tile counts along M and K, negated so that they ascend (for bisect)
    neg_tm = [-(-(-m // M)) for M in Ms]
    neg_tk = [-(-(-k // K)) for K in Ks]
    best = None  # ((fill, Mt, Nt, Kt), (Mt, Nt, Kt, tiles, reads_a, reads_b))
    for N in Ns:
        tn = -(-n // N)
        need = -(-target // tn)  # tiles >= target <=> count along M (or K) >= need
        if twice * (k * N) <= free_bytes:  # full K: any Mt
            p = bisect_right(neg_tm, -need)  # (the prefix whose count is >= need)
            tm = -neg_tm[p - 1 if p else 0]
            M = Ms[bisect_left(neg_tm, -tm)]  # the first with that count
            tiles = tm * tn
            key = (tiles if tiles >= target else 2**62 - tiles, M, N, k)
            if best is None or key < best[0]:
                # m outer keeps b[:, n] only when its tile is all of N or there is one M tile
                reads_a = 1 if (N == n or tm == 1) else tn
                best = (key, (M, N, k, tiles, reads_a, 1))
        # K-split: a is refetched per N tile, b once with Mt = M; the K tiles that fit are a
        # prefix (the buffer need grows with Kt)
        fit = bisect_right(Ks, free_bytes / (twice * N)) if Ks else 0
        while fit and not twice * (Ks[fit - 1] * N) <= free_bytes:  # (the test itself decides)
            fit -= 1
        while fit < len(Ks) and twice * (Ks[fit] * N) <= free_bytes:
            fit += 1
        if fit:
            p = min(bisect_right(neg_tk, -need), fit)
            tk = -neg_tk[p - 1 if p else 0]
            K = Ks[bisect_left(neg_tk, -tk)]
            tiles = tn * tk
            key = (tiles if tiles >= target else 2**62 - tiles, m, N, K)
            if best is None or key < best[0]:
                best = (key, (m, N, K, tiles, tn, 1))
    return None if best is None else Tiling(*best[1])


def _search_numpy(m: int, n: int, k: int, elem_bytes: float, free_bytes: float,
                  stream_a: bool, stream_b: bool, stream_out: bool,
                  grid: tuple[list[int], list[int], list[int]], target: int) -> Tiling | None:
    import numpy as np

    M = np.array(grid[0], dtype=np.int64)[:, None, None]
    N = np.array(grid[1], dtype=np.int64)[None, :, None]
    K = np.array(grid[2], dtype=np.int64)[None, None, :]
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


def clear_caches() -> None:
    """Forget every tiling, as a new process would (benchmarks time a new design's planning
    from scratch)."""
    global _python_searched
    tile_gemm.cache_clear()
    tile_vector.cache_clear()
    _candidate_memo.clear()
    _searched.clear()
    _python_searched = 0

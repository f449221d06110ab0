"""GEMM tiling: the pure-Python search (used by `dse run`, which then never imports numpy)
and the numpy search (used past a budget of candidates) pick the same tiling, and both
follow the rule of the module docstring on hand-counted cases."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.sim import tiling
from dse.sim.tiling import Tiling, tile_gemm


@pytest.fixture(params=["python", "numpy"])
def search(request, monkeypatch):
    """tile_gemm forced onto one of its two searches."""
    budget = 10**12 if request.param == "python" else 0
    monkeypatch.setattr(tiling, "PYTHON_SEARCH_BUDGET", budget)
    monkeypatch.setattr(tiling, "_python_searched", 0)
    return tile_gemm.__wrapped__


def test_whole_gemm_fits_compulsory_traffic_in_the_fewest_tiles_that_fill_the_pipeline(search):
    # 64x64x64 int8, all three operands streamed: 3 x 4 KiB = 12 KiB, target 12 KiB // 4 KiB = 3
    # tiles. Compulsory traffic needs the full K and a full N (or M) tile; the fewest tiles >= 3
    # are 4: Mt = 16 (m outer, listed first) or Nt = 16; each operand is read once.
    assert search(64, 64, 64, 1, 2**20, True, True, True) == Tiling(16, 64, 64, 4, 1, 1)


def test_nothing_streamed_is_one_tile_and_nothing_fits_is_none(search):
    assert search(100, 200, 300, 2, 0, False, False, False) == Tiling(100, 200, 300, 1, 1, 1)
    # the smallest tile (1 x 1 x 1, double-buffered a and b) needs 2 x 2 x 2 = 8 bytes
    assert search(100, 200, 300, 2, 7, True, True, False) is None
    assert search(100, 200, 300, 2, 8, True, True, False) is not None


def test_a_small_buffer_streams_outer_products_when_the_output_stays_on_chip(search):
    # A = 4096 x 64, B = 64 x 4096, int8, 64 KiB buffer, output not streamed. A full-K tile
    # cannot fit with a full M or N (2 x 64 x 4096 = 512 KiB), so K-tiles it is; with Mt = Nt =
    # 4096 each K step streams a column of A and a row of B once (2 x 8 KiB per step double-
    # buffered = 16 KiB x Kt <= 64 KiB: Kt <= 4), so the traffic is compulsory (2 x 256 KiB).
    # The pipeline target is min(64, 512 KiB / 4 KiB) = 64 tiles: Kt = 1 gives exactly 64.
    assert search(4096, 4096, 64, 1, 2**16, True, True, False) == Tiling(4096, 4096, 1, 64, 1, 1)


dims = st.integers(1, 70_000) | st.sampled_from([1, 3, 64, 576, 3136, 4608, 12544])


@settings(max_examples=300, deadline=None)
@given(m=dims, n=dims, k=dims, elem=st.sampled_from([0.5, 1, 2, 4]),
       free=st.floats(0, 2**27) | st.sampled_from([0.0, 8.0, 2**15, 24 * 2**20]),
       streams=st.tuples(st.booleans(), st.booleans(), st.booleans()),
       min_kt=st.sampled_from([1, 8, 128, 256]), min_nt=st.sampled_from([1, 8, 128, 256]),
       min_tile=st.sampled_from([1, 4096, 16384]))
def test_python_and_numpy_searches_agree(m, n, k, elem, free, streams, min_kt, min_nt, min_tile):
    args = (m, n, k, elem, free, *streams, min_kt, min_nt, min_tile)
    grid = (tiling._candidates(m), tiling._candidates(n, min(min_nt, n)), tiling._candidates(k, min(min_kt, k)))
    streamed = elem * (streams[0] * m * k + streams[1] * k * n + streams[2] * m * n)
    target = max(1, min(tiling.PIPELINE_TILES, int(streamed // min_tile)))
    if not any(streams):
        return
    assert tiling._search_python(m, n, k, elem, free, *streams, grid, target) == \
        tiling._search_numpy(m, n, k, elem, free, *streams, grid, target)


@settings(max_examples=300, deadline=None)
@given(m=dims, n=dims, k=dims, elem=st.sampled_from([0.5, 1, 2, 4]),
       frees=st.lists(st.floats(0, 2**24) | st.sampled_from([0.0, 8.0, 2**15, 2**20]), min_size=2, max_size=5),
       streams=st.tuples(st.booleans(), st.booleans(), st.booleans()).filter(any),
       min_kt=st.sampled_from([1, 8, 128]), min_nt=st.sampled_from([1, 8, 128]))
def test_a_search_answered_by_an_earlier_one_of_the_same_gemm_is_the_searched_answer(
        m, n, k, elem, frees, streams, min_kt, min_nt):
    # the same GEMM beside different free bytes, one after another (a ResNet stage's blocks):
    # every answer equals a search of its own, whether or not an earlier search gave it
    tiling.clear_caches()
    for free in frees:
        grid = (tiling._candidates(m), tiling._candidates(n, min(min_nt, n)),
                tiling._candidates(k, min(min_kt, k)))
        streamed = elem * (streams[0] * m * k + streams[1] * k * n + streams[2] * m * n)
        target = max(1, min(tiling.PIPELINE_TILES, int(streamed // 4096)))
        assert tile_gemm(m, n, k, elem, free, *streams, min_kt, min_nt) == \
            tiling._search_python(m, n, k, elem, free, *streams, grid, target)
    tiling.clear_caches()


@settings(max_examples=500, deadline=None)
@given(m=dims, n=dims, k=dims, elem=st.sampled_from([0.5, 1, 2, 4]),
       free=st.floats(0, 2**27) | st.sampled_from([0.0, 8.0, 2**15, 24 * 2**20]),
       min_kt=st.sampled_from([1, 8, 128, 256]), min_nt=st.sampled_from([1, 8, 128, 256]),
       min_tile=st.sampled_from([1, 4096, 16384]))
def test_weights_only_streaming_agrees_with_numpy(m, n, k, elem, free, min_kt, min_nt, min_tile):
    # the usual case of a network on an accelerator whose activations stay on chip: only b
    # streams, which the Python search answers by the tilings that read b once
    grid = (tiling._candidates(m), tiling._candidates(n, min(min_nt, n)), tiling._candidates(k, min(min_kt, k)))
    target = max(1, min(tiling.PIPELINE_TILES, int(elem * k * n // min_tile)))
    assert tiling._search_python(m, n, k, elem, free, False, True, False, grid, target) == \
        tiling._search_numpy(m, n, k, elem, free, False, True, False, grid, target)


def test_the_memo_of_earlier_searches_is_bounded_and_answers_as_a_fresh_search(monkeypatch):
    """A long sweep meets new GEMM shapes with every design: the memo stays under its bound,
    and what it answers after starting again equals a search with no memo at all."""
    monkeypatch.setattr(tiling, "SEARCHED_MAX", 8)
    tiling.clear_caches()
    shapes = [(64 * (1 + i % 5), 128, 64 * (1 + i), 1.0, 96 * 1024, False, True, True) for i in range(30)]
    got = [tile_gemm(*s) for s in shapes]
    assert 0 < len(tiling._searched) <= 8
    for s, g in zip(shapes, got):
        tiling.clear_caches()
        assert tile_gemm(*s) == g

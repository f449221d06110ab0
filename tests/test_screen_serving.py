"""The serving screen: a decode step estimated from the weights and KV bytes it reads, checked
against a hand count, and the screen's estimates over a serving study's knobs."""
from __future__ import annotations

import numpy as np
import pytest

from dse.search.resolve import resolve_study
from dse.search.screen_serving import RooflineCost
from dse.search.two_stage import screen_for
from dse.serving.spec import parse_serving_spec
from dse.spec.loader import load_architecture

#: Llama-3-70B in fp8: 70.55 GB of weights; K and V of 80 layers x 8 KV heads x 128 per token
WEIGHTS_B = 70_553_706_496
KV_PER_TOKEN_B = 2 * 80 * 8 * 128
#: what a decode step reads of them: all but the embedding table (128,256 x 8,192, untied),
#: of which it gathers one row per token
STEP_WEIGHTS_B = WEIGHTS_B - 128_256 * 8_192
#: the H100-class chip's HBM3: 3.35 TB/s peak, refreshing tRFC = 450 ns of every tREFI = 3.9 us
#: (dse/tech/data: JEDEC HBM3 timings), so a stream gets 1 - 450/3900 of the peak
HBM_BPS = 3.35e12 * (1 - 450e-9 / 3.9e-6)


def test_a_decode_step_reads_the_weights_and_the_kv_cache_at_the_hbm_bandwidth():
    """One sequence decoding one token after 20,000 cached: every weight but the embedding table
    and every cached K,V byte crosses HBM once; at one token the step is memory-bound, so it takes those bytes over
    HBM3's bandwidth (within 2%: norms, embedding gather, LM head's compute)."""
    spec = parse_serving_spec("serve:model=llama-3-70b,precision=fp8_e4m3")
    assert spec.shape().weight_bytes(spec.formats) == WEIGHTS_B
    cost = RooflineCost(load_architecture("h100-class"), spec.shape(), spec.formats)
    past = 20_000
    t, _ = cost.iteration(1, past, [], 1)
    hand = (STEP_WEIGHTS_B + 8_192 + past * KV_PER_TOKEN_B) / HBM_BPS
    assert hand <= t * (1 + 1e-9) and t <= 1.02 * hand


def test_serving_estimates_over_the_batch_cap():
    """On the Llama-3-70B study: a larger batch cap never lowers the estimated tokens per
    second, TPOT grows with the batch (more KV read per step) and stays above a step's weight
    reads alone, and fp8 KV holds twice the tokens of bf16 (so bf16's batch is capped by memory
    first: at a cap of 96 its estimate equals that at 64)."""
    st = resolve_study("llama3-70b-serving")
    caps = np.array([4, 8, 16, 32, 64, 96] * 2)
    kv = np.array(["bf16"] * 6 + ["fp8_e4m3"] * 6, dtype=object)
    est = screen_for(st).evaluate({"serving.batch_cap": caps, "serving.kv_precision": kv})
    for half in (slice(0, 6), slice(6, 12)):
        assert np.all(np.diff(est["throughput_tokens_per_s"][half]) >= 0)
        assert np.all(np.diff(est["tpot_p99_s"][half]) >= 0)
    assert np.all(est["tpot_p99_s"] >= STEP_WEIGHTS_B / HBM_BPS)
    assert est["tpot_p99_s"][5] == est["tpot_p99_s"][4]          # bf16: memory-bound batch
    assert est["tpot_p99_s"][11] > est["tpot_p99_s"][10] or est["tpot_p99_s"][11] == pytest.approx(
        est["tpot_p99_s"][10])
    assert np.all(est["capacity_margin_bytes"] < 0)

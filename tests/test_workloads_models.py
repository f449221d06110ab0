"""Generators against hand formulas and published figures."""
from __future__ import annotations

import pytest

from dse.workloads import load_workload
from dse.workloads.ops import PRECISION_BYTES


def _weights(wl) -> int:
    """Weight elements: the b operand of every op whose b role is weights."""
    total = 0
    for op in wl.ops:
        if op.kind == "matmul" and op.b_role == "weights":
            total += op.k * op.n * op.count
        elif op.kind == "conv2d":
            total += op.out_channels * op.in_channels // op.groups * op.kernel_h * op.kernel_w
    return total


def test_gemm_is_m_n_k_macs():
    assert load_workload("gemm:m=384,n=512,k=96").macs == 384 * 512 * 96


def test_mlp_macs_are_batch_times_weights():
    wl = load_workload("mlp:widths=1024-4096-4096-1024,batch=32")
    assert wl.macs == 32 * (1024 * 4096 + 4096 * 4096 + 4096 * 1024)
    relus = [op for op in wl.ops if op.kind == "vector"]
    assert [op.elements for op in relus] == [32 * 4096, 32 * 4096, 32 * 1024]


def test_resnet50_matches_the_published_4_1_gmac_per_image():
    # torchvision's ResNet50_Weights.IMAGENET1K_V1 lists 4.09 "GFLOPS", which (as for
    # most vision papers) counts multiply-accumulates of the conv and fc layers.
    wl = load_workload("resnet50")
    assert 4.0e9 <= wl.macs <= 4.2e9
    assert wl.macs == pytest.approx(4.09e9, rel=0.005)
    assert load_workload("resnet50:batch=3").macs == 3 * wl.macs


def test_resnet50_has_the_published_weight_count():
    # torchvision resnet50: 25,557,032 parameters, of which 53,120 are BatchNorm
    # scale/shift (2 x 26,560 channels) and 1,000 the fc bias; conv + fc weights remain.
    assert _weights(load_workload("resnet50")) == 25_557_032 - 53_120 - 1_000


def test_resnet50_residual_adds_join_two_branches():
    wl = load_workload("resnet50")
    adds = [op for op in wl.ops if op.tag == "residual"]
    assert len(adds) == 3 + 4 + 6 + 3
    assert all(len(op.deps) == 2 and op.inputs == 2 for op in adds)
    assert dict((op.name, op.deps) for op in adds)["layer1.0.add"] == ("layer1.0.conv3",
                                                                        "layer1.0.downsample")


def _encoder_layer_macs(s, d, d_ff):
    return 4 * s * d * d + 2 * s * s * d + 2 * s * d * d_ff


@pytest.mark.parametrize("spec, layers, d, d_ff, s, b", [
    ("bert-base", 12, 768, 3072, 128, 1),
    ("bert-large:seq=384,batch=2", 24, 1024, 4096, 384, 2),
])
def test_bert_macs_follow_the_layer_formula(spec, layers, d, d_ff, s, b):
    wl = load_workload(spec)
    assert wl.macs == b * layers * _encoder_layer_macs(s, d, d_ff)
    assert wl.samples == b


def test_bert_attention_multiplies_activations_by_activations():
    wl = load_workload("bert-base:layers=1,seq=64")
    attn = {op.name: op for op in wl.ops if op.name.endswith(("scores", "context"))}
    assert {(op.a_role, op.b_role) for op in attn.values()} == {("activations", "activations")}
    assert attn["layer0.scores"].count == 12 and attn["layer0.scores"].n == 64


def test_gpt_decode_macs_per_token_are_parameters_plus_kv_cache_attention():
    # GPT-2 small: 124,439,808 parameters (Radford et al. 2019, HF "gpt2"). Take away the
    # position embedding (1024 x 768) and the biases and LayerNorm vectors (12 layers x
    # (9 + 4) x 768, plus the final LayerNorm 2 x 768); what remains are the matmul
    # weights, the LM head being the tied token embedding 50257 x 768.
    matmul_params = 124_439_808 - 1024 * 768 - (12 * 13 * 768 + 2 * 768)
    seq, layers, d = 1000, 12, 768
    wl = load_workload(f"gpt:phase=decode,seq={seq},batch=4")
    assert wl.macs / wl.samples == matmul_params + 2 * layers * seq * d


def test_gpt_decode_reads_and_writes_the_kv_cache():
    layers, d, seq, b = 2, 256, 512, 3
    wl = load_workload(f"gpt:layers={layers},d_model={d},heads=4,seq={seq},batch={b},"
                       "phase=decode,precision=fp16")
    scores = [op for op in wl.ops if op.name.endswith("scores")]
    assert all(op.b_role == "kv_cache" and op.m == 1 and op.n == seq for op in scores)
    written = sum(op.tensor_bytes()["out"]["bytes"] for op in wl.ops if op.out_role == "kv_cache")
    assert written == layers * b * 2 * d * 2  # one new K and V row per sequence, 2 bytes each
    read = sum(op.tensor_bytes()["b"]["bytes"] for op in wl.ops
               if op.kind == "matmul" and op.b_role == "kv_cache")
    assert read == layers * b * 2 * seq * d * 2  # whole cache, K and V, once per step


def test_gpt_prefill_macs():
    L, d, s, V = 2, 512, 256, 1000
    wl = load_workload(f"gpt:layers={L},d_model={d},heads=8,seq={s},vocab={V}")
    assert wl.macs == L * _encoder_layer_macs(s, d, 4 * d) + s * d * V


def test_lstm_macs():
    layers, h, x, seq, b = 3, 256, 128, 10, 8
    wl = load_workload(f"lstm:layers={layers},hidden={h},input={x},seq={seq},batch={b}")
    per_step = [4 * h * (x + h)] + [4 * h * (h + h)] * (layers - 1)
    assert wl.macs == seq * b * sum(per_step)
    # the recurrence is a chain: step t of a layer waits for step t-1
    assert "layer0.t8.cell" in dict((op.name, op.deps) for op in wl.ops)["layer0.t9.h_proj"]


def test_moe_active_macs_are_top_k_of_e_experts_plus_router():
    T, d, f, E, k = 1024, 256, 1024, 8, 2
    wl = load_workload(f"moe:tokens={T},d_model={d},d_ff={f},experts={E},top_k={k},"
                       "capacity_factor=2,skew=0")
    dense_all_experts = E * 2 * d * f  # every expert's FFN on one token
    router = d * E
    assert wl.macs / T == k / E * dense_all_experts + router
    assert wl.params["expert_tokens"] == [T * k // E] * E and wl.params["dropped_tokens"] == 0


def test_moe_skew_makes_experts_uneven_and_capacity_drops_tokens():
    T, E, k = 4096, 16, 2
    spec = f"moe:tokens={T},d_model=64,d_ff=128,experts={E},top_k={k},skew=1.5"
    free = load_workload(spec + ",capacity_factor=0,seed=1")
    counts = free.params["expert_tokens"]
    assert sum(counts) == T * k and max(counts) <= T and max(counts) > 3 * T * k / E
    assert load_workload(spec + ",capacity_factor=0,seed=1").params == free.params
    assert load_workload(spec + ",capacity_factor=0,seed=2").params["expert_tokens"] != counts
    capped = load_workload(spec + ",capacity_factor=1.0,seed=1")
    assert max(capped.params["expert_tokens"]) == T * k // E
    assert capped.params["dropped_tokens"] == sum(counts) - sum(capped.params["expert_tokens"]) > 0
    assert all(op.b_role == "weights" for op in capped.ops if op.tag == "expert" and op.kind == "matmul")


def test_dlrm_gathers_read_lookups_times_rows_of_dim():
    batch, tables, dim, lookups = 256, 8, 64, 20
    wl = load_workload(f"dlrm:batch={batch},tables={tables},dim={dim},lookups={lookups},"
                       "bottom=13-128-64,top=256-1,precision=fp16")
    gathers = [op for op in wl.ops if op.in_role == "embeddings"]
    assert len(gathers) == tables
    assert all(op.pattern == "random" and op.access_bytes == dim * 2 for op in gathers)
    read = sum(op.tensor_bytes()["in"]["bytes"] for op in gathers)
    assert read == tables * batch * lookups * dim * PRECISION_BYTES["fp16"]


def test_dlrm_mlperf_defaults_feed_479_interaction_features_to_the_top_mlp():
    # MLPerf DLRM: 26 sparse + 1 dense feature -> 27*26/2 = 351 dot products + 128 dense.
    wl = load_workload("dlrm:batch=1")
    top0 = next(op for op in wl.ops if op.name == "top.fc0")
    assert (top0.k, top0.n) == (479, 1024)
    assert wl.params["embedding_table_bytes"] == 26 * 1_000_000 * 128 * 2


@pytest.mark.parametrize("precision", ["int8", "fp8", "bf16", "fp16", "fp32"])
@pytest.mark.parametrize("name", ["gemm", "mlp", "resnet50:image=64", "bert:layers=1",
                                  "gpt:layers=1,seq=32", "lstm:seq=2", "moe:d_model=64,d_ff=64",
                                  "dlrm:batch=8"])
def test_every_generator_takes_every_precision(name, precision):
    sep = "," if ":" in name else ":"
    wl = load_workload(f"{name}{sep}precision={precision}")
    assert {op.precision for op in wl.ops} == {precision}

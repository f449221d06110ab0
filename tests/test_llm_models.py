"""Today's LLM shapes (GQA, SwiGLU, MoE, config.json) and number formats, against hand counts
and published parameter counts."""
import json

import pytest

from dse.errors import SpecError
from dse.sim.engine import simulate
from dse.spec.loader import load_architecture
from dse.workloads import load_workload
from dse.workloads.models.llm_config import Formats, bundled_models, load_config

# Published parameter counts (model cards / papers): Llama 3 8B and 70B (Meta, 2024: 8.03B and
# 70.6B on the Hugging Face model pages), Mixtral 8x7B (Jiang et al., 2024: 46.7B total),
# Qwen1.5-MoE-A2.7B (Qwen blog, 2024: 14.3B total).
PUBLISHED_PARAMS = {"llama-3-8b": 8.03e9, "llama-3-70b": 70.6e9, "mixtral-8x7b": 46.7e9,
                    "qwen1.5-moe-a2.7b": 14.3e9}

# H100 SXM: 3.35 TB/s HBM3 [datasheet]; JEDEC HBM3 refresh takes tRFC = 450 ns every
# tREFI = 3.9 us, so a sustained stream gets (1 - 450/3900) of the pins.
HBM_SUSTAINED = 3.35e12 * (1 - 450e-9 / 3.9e-6)


def test_bundled_configs_listed():
    assert set(PUBLISHED_PARAMS) <= set(bundled_models())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_counts_match_published(name):
    assert load_config(name).params == pytest.approx(PUBLISHED_PARAMS[name], rel=0.005)


def _kv_bytes(spec: str) -> float:
    return load_workload(spec).bytes_by_role()["kv_cache"]


def _mha_config(tmp_path):
    cfg = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
           "num_key_value_heads": 32, "num_hidden_layers": 32, "vocab_size": 128256,
           "max_position_embeddings": 8192, "hidden_act": "silu"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_kv_bytes_per_token_hand_count():
    # Llama-3-8B: K and V, 32 layers, 8 KV heads of 128, bf16 = 2 x 32 x 8 x 128 x 2 B = 131,072 B
    assert load_config("llama-3-8b").kv_bytes_per_token(Formats()) == 131072
    # fp8 KV: one byte per element
    assert load_config("llama-3-8b").kv_bytes_per_token(Formats(kv_cache="fp8_e4m3")) == 65536


def test_gqa_divides_kv_bytes_by_group(tmp_path):
    path = _mha_config(tmp_path)
    mha, gqa = load_config(str(path)), load_config("llama-3-8b")
    assert mha.kv_bytes_per_token(Formats()) / gqa.kv_bytes_per_token(Formats()) == 32 / 8
    # and in the ops the engine runs: the KV cache read by a decode step of 4 x 1000 tokens
    from dse.workloads.builder import Graph
    from dse.workloads.models.llm import add_attention

    reads = []
    for sh in (mha, gqa):
        g = Graph("bf16")
        add_attention(g, sh, Formats(), "", seqs=4, q_len=1, past=1000, deps=None)
        reads.append(sum(t["bytes"] for op in g.ops for k, t in op.tensor_bytes().items()
                         if t["role"] == "kv_cache"))
    # per layer: K and V of 4 x 1001 tokens x kv_heads x 128 x 2 B
    assert reads[1] == 2 * 4 * 1001 * 8 * 128 * 2
    assert reads[0] / reads[1] == 4


def test_fp8_kv_halves_kv_bytes():
    bf16 = _kv_bytes("llm:batch=4,seq=512")
    fp8 = _kv_bytes("llm:batch=4,seq=512,kv_precision=fp8_e5m2")
    assert bf16 / fp8 == 2


def test_weight_formats_scale_weight_bytes():
    shape = load_config("llama-3-70b")
    assert shape.weight_bytes(Formats(weights="int4")) * 4 == shape.weight_bytes(Formats())
    assert shape.weight_bytes(Formats(weights="fp4")) * 2 == shape.weight_bytes(Formats(weights="fp8_e4m3"))
    w16 = load_workload("llm:batch=1,seq=128").weight_bytes()
    w4 = load_workload("llm:batch=1,seq=128,weight_precision=int4").weight_bytes()
    assert w16 == 4 * w4


def test_moe_decode_reads_only_routed_experts():
    # Mixtral, one token: top-2 of 8 experts per layer, so 2 x 3 x 4096 x 14336 expert weights
    # per layer plus attention, router and the LM head (embedding: one gathered row)
    sh = load_config("mixtral-8x7b")
    wl = load_workload("llm:model=mixtral-8x7b,batch=1,seq=64")
    per_layer = (4096 * 4096 * 2 + 2 * 4096 * 1024) + 4096 * 8 + 2 * 3 * 4096 * 14336
    expected = 2 * (32 * per_layer + 32000 * 4096)
    assert wl.weight_bytes() == expected
    assert sh.params > wl.weight_bytes() / 2 * 3  # most experts stay unread


def test_qwen_moe_has_shared_expert_and_60_experts():
    sh = load_config("qwen1.5-moe-a2.7b")
    assert (sh.experts, sh.top_k, sh.expert_d_ff, sh.shared_d_ff) == (60, 4, 1408, 5632)
    # 64 tokens x top-4 = 256 slots spread evenly: every expert receives tokens
    ops = {op.name for op in load_workload("llm:model=qwen1.5-moe-a2.7b,batch=64,seq=64").ops}
    assert {f"layer0.expert{e}.down" for e in range(60)} <= ops
    assert "layer0.shared.down" in ops


def test_decode_step_at_hbm_roofline():
    """Batch-1 decode streams every weight and the KV cache once: time = bytes / sustained bandwidth."""
    arch = load_architecture("h100-class")
    wl = load_workload("llm:batch=1,seq=1024")
    sh = load_config("llama-3-8b")
    # all weights but the embedding table (one 8 KiB row gathered), plus K,V of 1025 tokens
    moved = sh.params * 2 - (128256 - 1) * 4096 * 2 + 131072 * 1025
    assert simulate(arch, wl)["latency_s"] == pytest.approx(moved / HBM_SUSTAINED, rel=0.05)


def test_fp8_gemms_run_at_twice_bf16_rate():
    """Prefill is compute bound: fp8 (E4M3 or E5M2) halves the GEMM time on an H100."""
    arch = load_architecture("h100-class")
    t16 = simulate(arch, load_workload("llm:phase=prefill,seq=2048"))["latency_s"]
    t8 = simulate(arch, load_workload("llm:phase=prefill,seq=2048,precision=fp8_e5m2"))["latency_s"]
    assert t16 / t8 == pytest.approx(2.0, rel=0.1)


def test_config_missing_field_names_it(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
                                "vocab_size": 100}))
    with pytest.raises(SpecError, match="max_position_embeddings: required field is missing"):
        load_config(str(path))


def test_prompt_longer_than_context():
    with pytest.raises(SpecError, match="exceed the model's context of 8192"):
        load_workload("llm:phase=prefill,seq=9000")


def test_capacity_factor_drops_tokens_of_a_skewless_router():
    """64 tokens x top-2 over 8 experts: 16 per expert evenly; capacity 1.0 keeps ceil(1.0 x 128 / 8) = 16,
    capacity 0.5 keeps 8 per expert, halving the expert GEMMs' MACs."""
    def expert_macs(spec):
        return sum(op.macs for op in load_workload(spec).ops if ".expert" in op.name and op.name.startswith("layer0."))

    full = expert_macs("llm:model=mixtral-8x7b,batch=64,seq=16")
    assert expert_macs("llm:model=mixtral-8x7b,batch=64,seq=16,capacity_factor=1.0") == full
    assert expert_macs("llm:model=mixtral-8x7b,batch=64,seq=16,capacity_factor=0.5") * 2 == full
    assert full == 8 * 16 * 3 * 4096 * 14336

"""LLM serving against hand-derived figures: roofline TTFT/TPOT at low load, saturation at the
decode roofline, the KV-cache budget in blocks, formats, and bad input."""
import json
import subprocess
import sys

import pytest

from dse.errors import DseError
from dse.serving import ServingSpec, kv_blocks, simulate_serving
from dse.serving.cost import IterationCost
from dse.sim.engine import simulate
from dse.spec.loader import load_architecture
from dse.workloads import load_workload
from dse.workloads.models.llm_config import Formats, load_config

# H100 SXM [NVIDIA H100 datasheet, 2023]: 989.4 TFLOPS dense bf16, 80 GB of HBM3 at 3.35 TB/s.
# JEDEC HBM3 refresh takes tRFC = 450 ns of every tREFI = 3.9 us, so a stream sustains
# 3.35 TB/s x (1 - 450/3900).
PEAK_FLOPS = 989.4e12
HBM_BW = 3.35e12 * (1 - 450e-9 / 3.9e-6)
HBM_BYTES = 80e9

# Llama-3-8B, from its config.json: d 4096, 32 layers, 32 heads and 8 KV heads of 128, SwiGLU of
# 14336, vocabulary 128256; bf16 everywhere.
D, LAYERS, VOCAB, FF, HEADS, KV_HEADS, DH = 4096, 32, 128256, 14336, 32, 8, 128
LAYER_WEIGHTS = D * HEADS * DH * 2 + 2 * D * KV_HEADS * DH + 3 * D * FF + 2 * D
PARAMS = 2 * VOCAB * D + LAYERS * LAYER_WEIGHTS + D
KV_PER_TOKEN = 2 * LAYERS * KV_HEADS * DH * 2  # K and V, bf16


@pytest.fixture(scope="module")
def h100():
    return load_architecture("h100-class")


def _gemm_s(m, n, k):
    """Roofline time of one bf16 GEMM against bf16 weights: the slower of its FLOPs and its weights."""
    return max(2 * m * n * k / PEAK_FLOPS, k * n * 2 / HBM_BW)


def _prefill_roofline_s(p: int) -> float:
    """Each weight GEMM at its roofline, causal attention (FLOPs bound), one LM-head row."""
    layer = (_gemm_s(p, HEADS * DH, D) + _gemm_s(p, 2 * KV_HEADS * DH, D) + _gemm_s(p, D, HEADS * DH)
             + _gemm_s(p, 2 * FF, D) + _gemm_s(p, D, FF))
    attention = 2 * 2 * HEADS * DH * p * (p + 1) / 2 / PEAK_FLOPS  # scores and context over the triangle
    return LAYERS * (layer + attention) + _gemm_s(1, VOCAB, D)


def _trace(tmp_path, rows):
    path = tmp_path / "trace.csv"
    path.write_text("arrival_s,prompt_tokens,output_tokens\n" + "".join(f"{a},{p},{o}\n" for a, p, o in rows))
    return str(path)


def test_low_rate_ttft_is_one_prefill_and_tpot_one_decode_step(h100, tmp_path):
    """Requests 10 s apart never share the chip: TTFT is one prefill, TPOT one batch-1 decode step."""
    p, o = 512, 64
    spec = ServingSpec(trace=_trace(tmp_path, [(10.0 * i, p, o) for i in range(4)]), chunk_tokens=512)
    res = simulate_serving(h100, spec)
    ttft = res.requests["ttft_s"].to_numpy()
    tpot = res.requests["tpot_s"].astype(float).to_numpy()
    # the same prefill through the engine as one workload
    prefill = simulate(h100, load_workload(f"llm:phase=prefill,seq={p}"))["latency_s"]
    assert ttft == pytest.approx([prefill] * 4, rel=0.02)
    # decode at batch 1 streams the weights (less the embedding table, of which one row is read)
    # and the K,V of the context, on average p + o/2 tokens
    decode_roof = (2 * PARAMS - 2 * (VOCAB - 1) * D + KV_PER_TOKEN * (p + o / 2)) / HBM_BW
    assert tpot == pytest.approx([decode_roof] * 4, rel=0.05)
    # prefill: never faster than the roofline; the engine's 128 x 256 tiles dealt in waves over
    # 132 SMs cost up to ~13% more (wave quantisation), so 5% is not met here (see the issue note)
    roof = _prefill_roofline_s(p)
    assert roof <= ttft.min() <= 1.15 * roof


def test_above_capacity_throughput_saturates_at_decode_roofline(h100):
    """Everyone arrives at once: 64 sequences decode together, bounded by streaming the weights
    and the batch's KV cache once per step; the queue grows with the run."""
    cap, prompt, out = 64, 32, 256
    runs = {}
    for n in (320, 640):
        spec = ServingSpec(rate=1000.0, requests=n, prompt_tokens=str(prompt), output_tokens=str(out),
                           batch_cap=cap, chunk_tokens=2048)
        runs[n] = simulate_serving(h100, spec)
    # decode step at batch 64, context prompt + out/2 on average; logits of 64 rows are tiny
    step = (2 * PARAMS - 2 * (VOCAB - cap) * D + cap * KV_PER_TOKEN * (prompt + out / 2)) / HBM_BW
    bound = cap / step
    for res in runs.values():
        tput = res["throughput_tokens_per_s"]
        assert tput <= bound * 1.01
        assert tput >= 0.9 * bound
    # p99 TTFT grows with the length of the run (the queue never drains)
    assert runs[640]["ttft_p99_s"] > 1.8 * runs[320]["ttft_p99_s"]


def test_max_concurrent_requests_fill_the_kv_budget(h100):
    """(capacity - weights) / (KV bytes per token x tokens per request), within one block."""
    prompt, out = 4000, 96
    spec = ServingSpec(rate=1000.0, requests=200, prompt_tokens=str(prompt), output_tokens=str(out),
                       batch_cap=1000, admission="reserve")
    res = simulate_serving(h100, spec)
    expected = (HBM_BYTES - 2 * PARAMS) / (KV_PER_TOKEN * (prompt + out))
    assert abs(res["peak_running"] - expected) <= 1 + 16 / (prompt + out)
    assert res["kv_peak_blocks"] <= res["kv_blocks"]


def test_paged_cache_preempts_and_never_overflows(h100):
    """On-demand paging admits more than fit at full length: the newest are preempted, all finish."""
    spec = ServingSpec(model="llama-3-70b", precision="fp8_e4m3", rate=1000.0, requests=40,
                       prompt_tokens="2048", output_tokens="1024", batch_cap=64, chunk_tokens=2048)
    res = simulate_serving(h100, spec)
    assert res["preemptions"] > 0
    assert res["kv_peak_blocks"] <= res["kv_blocks"]
    assert res.requests["finish_s"].notna().all()
    assert (res.requests["output_tokens"] == 1024).all()


def test_swap_preemption_to_the_next_tier():
    """Swapping to the DDR tier instead of recomputing: 40 requests of 5120 tokens need 205k tokens
    of KV; the 32 GiB HBM holds (32 GiB - 16.06 GB) / 128 KiB = 140k after the weights."""
    arch = load_architecture("hbm-ddr-tiered")
    base = dict(rate=1000.0, requests=40, prompt_tokens="4096", output_tokens="1024", batch_cap=64,
                chunk_tokens=2048)
    swap = simulate_serving(arch, ServingSpec(**base, preemption="swap"))
    assert swap["kv_blocks"] == int((32 * 2**30 - 2 * PARAMS) // (KV_PER_TOKEN * 16))
    assert swap["preemptions"] > 0
    assert swap["kv_peak_blocks"] <= swap["kv_blocks"]
    assert swap.requests["finish_s"].notna().all()


def test_kv_blocks_follow_formats_and_gqa(h100):
    shape = load_config("llama-3-70b")
    fp8_weights = shape.weight_bytes(Formats(weights="fp8_e4m3"))
    bf16 = kv_blocks(h100, fp8_weights, shape.kv_bytes_per_token(Formats()), 16)
    fp8 = kv_blocks(h100, fp8_weights, shape.kv_bytes_per_token(Formats(kv_cache="fp8_e4m3")), 16)
    # 70B: K,V of 80 layers x 8 heads x 128 = 163,840 elements per token
    budget = HBM_BYTES - shape.params
    assert bf16 == int(budget // (163840 * 2 * 16))
    assert fp8 == int(budget // (163840 * 16))


def test_iteration_cost_equals_engine_on_the_whole_step(h100):
    """The sum of the per-part engine runs equals one engine run of the whole decode step."""
    shape = load_config("llama-3-8b")
    cost = IterationCost(h100, shape, Formats())
    for batch, ctx in ((1, 1024), (16, 512), (48, 3000)):
        whole = simulate(h100, load_workload(f"llm:batch={batch},seq={ctx}"))["latency_s"]
        parts, _ = cost.iteration(batch, batch * ctx, [], batch)
        assert parts == pytest.approx(whole, rel=0.02)
    whole = simulate(h100, load_workload("llm:phase=prefill,seq=768"))["latency_s"]
    assert cost.iteration(0, 0, [(768, 0)], 1)[0] == pytest.approx(whole, rel=0.02)


def test_trace_file_requests_kept(h100, tmp_path):
    res = simulate_serving(h100, ServingSpec(trace=_trace(tmp_path, [(0.5, 100, 10), (0.0, 200, 20)])))
    df = res.requests.sort_values("arrival_s")
    assert df["prompt_tokens"].tolist() == [200, 100]
    assert df["output_tokens"].tolist() == [20, 10]
    assert (df["ttft_s"] > 0).all() and (df["e2e_s"] >= df["ttft_s"]).all()


# ---- bad input: one line, exit 2 -----------------------------------------------------

def _dse(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True, cwd=cwd)


def _one_line_exit_2(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0]


def test_cli_config_missing_field(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
                               "max_position_embeddings": 256}))
    _one_line_exit_2(_dse("serve", "h100-class", "--model", str(cfg)), "vocab_size", "missing")


def test_cli_prompt_longer_than_context():
    _one_line_exit_2(_dse("serve", "h100-class", "--prompt-tokens", "9000"), "longer than the context")


def test_cli_rate_not_positive():
    _one_line_exit_2(_dse("serve", "h100-class", "--rate", "0"), "arrival rate must be positive")


def test_cli_kv_budget_below_one_block(tmp_path):
    from dse.spec.loader import bundled_dir

    yaml = (bundled_dir("architectures") / "h100-class.yaml").read_text()
    # 16.0610 GB: the 16.0605 GB of Llama-3-8B's bf16 weights fit, one 2 MiB block does not
    yaml = yaml.replace("capacity: 80 GB", "capacity: 16061 MB")
    path = tmp_path / "small.yaml"
    path.write_text(yaml)
    _one_line_exit_2(_dse("serve", str(path)), "below one block")


def test_cli_serve_prints_summary_and_writes_requests(tmp_path):
    out = tmp_path / "requests.csv"
    proc = _dse("serve", "h100-class", "--rate", "4", "--requests", "20", "--format", "json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["requests"] == 20 and summary["tokens_per_j"] > 0
    assert len(out.read_text().strip().splitlines()) == 21


def test_bad_serving_spec_is_a_dse_error():
    from dse.serving import parse_serving_spec

    with pytest.raises(DseError, match="unknown serving parameter 'batch'"):
        parse_serving_spec("serve:batch=4")
    assert parse_serving_spec("serve:prompt_tokens=128-1024,rate=2").prompt_tokens == "128-1024"


def test_disaggregated_adds_the_kv_transfer_at_low_rate(h100, tmp_path):
    """Prefill on one chip, decode on another: alone on the chips, a request waits exactly for its
    K,V to cross the link (prompt x KV bytes per token / link bandwidth) on top of the colocated run."""
    p, o = 512, 32
    trace = _trace(tmp_path, [(10.0 * i, p, o) for i in range(3)])
    together = simulate_serving(h100, ServingSpec(trace=trace))
    apart = simulate_serving(h100, ServingSpec(trace=trace, disaggregated=True, kv_link="50 GB/s"))
    transfer = p * KV_PER_TOKEN / 50e9  # 1.34 ms
    assert apart["chips"] == 2
    assert apart.requests["ttft_s"].tolist() == pytest.approx(together.requests["ttft_s"].tolist(), rel=1e-9)
    gap = (apart.requests["e2e_s"] - together.requests["e2e_s"]).to_numpy()
    assert gap == pytest.approx([transfer] * 3, rel=0.01)
    # two chips idle twice the static power
    assert apart["static_energy_j"] == pytest.approx(2 * together["static_energy_j"] * apart["duration_s"]
                                                     / together["duration_s"], rel=1e-6)


def test_serving_validation_cases_never_beat_the_weight_stream():
    """dse's TPOT in the shipped serving cases is never below one read of the weights at the
    H100's peak 3.35 TB/s (every decode step streams them)."""
    from dse.serving import parse_serving_spec
    from dse.validate import load_cases
    from dse.validate.kinds import kind_module

    checked = 0
    for case, base in load_cases():
        if case.kind != "serving" or not case.metric.startswith("tpot"):
            continue
        spec = parse_serving_spec(case.serve)
        shape = spec.shape()
        streamed = shape.weight_bytes(spec.formats) * (1 - shape.vocab * shape.d_model / shape.params / 2)
        assert kind_module("serving").evaluate(case, base) >= streamed / 3.35e12
        checked += 1
    assert checked >= 2

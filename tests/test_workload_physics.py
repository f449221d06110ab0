"""Real workloads on the bundled designs behave as physics says."""
from __future__ import annotations


from dse.sim.engine import simulate
from dse.spec.loader import load_architecture
from dse.workloads import load_workload

H100_BW = 3.35e12          # B/s, NVIDIA H100 SXM datasheet
H100_BF16 = 989.4e12       # dense bf16 FLOP/s


def test_gpt_decode_is_memory_bound_and_prefill_compute_bound_on_h100():
    arch = load_architecture("h100-class")
    decode = simulate(arch, load_workload("gpt:phase=decode,batch=8,seq=1024"))
    prefill = simulate(arch, load_workload("gpt:phase=prefill,batch=8,seq=1024"))
    assert decode["bound"] == "hbm3"
    assert prefill["bound"] == "compute"
    # decode reads every weight and the whole KV cache per token: time >= bytes / bandwidth
    hbm_bytes = decode["bytes_read_hbm3"] + decode["bytes_written_hbm3"]
    assert decode["latency_s"] >= hbm_bytes / H100_BW
    # prefill cannot beat the dense bf16 peak
    assert prefill["throughput_ops_per_s"] <= H100_BF16
    # and decode's arithmetic intensity sits far below the ridge point (295 FLOP/B), prefill's far above
    assert decode["total_ops"] / hbm_bytes < 295 / 10
    assert prefill["total_ops"] / (prefill["bytes_read_hbm3"] + prefill["bytes_written_hbm3"]) > 295 / 3


def test_moe_experts_that_do_not_fit_the_fast_tier_spill_and_slow_down():
    wl = load_workload("moe:tokens=64,d_model=4096,d_ff=14336,experts=8,top_k=2")
    expert_bytes = 8 * 2 * 4096 * 14336 * 2            # up and down projections (SiLU, not gated), bf16
    base = load_architecture("h100-class").model_dump(mode="python")
    host = {"name": "host", "technology": "ddr5-4800", "channels": 2, "capacity": "256 GiB"}

    def with_hbm(capacity: float):
        data = {**base, "memories": [{**base["memories"][0], "capacity": capacity}, host]}
        return type(load_architecture("h100-class")).model_validate(data)

    fits = simulate(with_hbm(80e9), wl)
    half = simulate(with_hbm(expert_bytes / 2), wl)
    tight = simulate(with_hbm(expert_bytes / 8), wl)
    assert fits["bytes_read_host"] == 0
    assert half["bytes_read_host"] > 0.4 * expert_bytes
    assert tight["bytes_read_host"] > half["bytes_read_host"]
    assert fits["latency_s"] < half["latency_s"] < tight["latency_s"]
    # with most experts in DDR5, time approaches the DDR5 read time of the spilled bytes
    ddr5_bw = 2 * 38.4e9
    assert tight["latency_s"] >= tight["bytes_read_host"] / ddr5_bw


def test_fused_attention_keeps_the_scores_off_chip_traffic():
    arch = load_architecture("h100-class")
    spec = "gpt:layers=2,d_model=1024,heads=16,seq=2048,phase=prefill,batch=4"
    fused = simulate(arch, load_workload(spec))
    unfused = simulate(arch, load_workload(spec + ",fused_attention=false"))
    moved = {k: r["bytes_read_hbm3"] + r["bytes_written_hbm3"] for k, r in (("f", fused), ("u", unfused))}
    # unfused, each layer's scores (batch x heads x seq^2, bf16) are written, read by softmax,
    # written again and read by the context matmul: at least 4 passes over them
    scores = 4 * 16 * 2048 * 2048 * 2
    assert moved["u"] - moved["f"] >= 2 * 4 * scores * 0.999
    assert fused["latency_s"] < unfused["latency_s"]
    assert fused["macs"] == unfused["macs"]


def test_shared_weights_are_stored_once_rnn_steps_and_training_backward():
    from dse.sim.engine import plan_memory

    def role_bytes(workload):  # bytes the allocator stores per role, wherever it put them
        arch = load_architecture("h100-class")
        return {role: sum(by.values()) for role, by in plan_memory(arch, workload).roles.items()}

    wl = load_workload("lstm:layers=1,hidden=256,input=128,seq=16,batch=4,precision=int8")
    # one LSTM layer holds W_ih (4h x in) and W_hh (4h x h) once, however many steps read W_hh
    hand = 4 * 256 * (128 + 256) * 1
    assert wl.weight_bytes() == hand
    assert role_bytes(wl)["weights"] == hand
    fwd = load_workload("mlp:precision=bf16")
    train = load_workload("mlp:precision=bf16,train=true")
    assert role_bytes(train)["weights"] == role_bytes(fwd)["weights"] == fwd.weight_bytes()
    # a 512 MiB memory holds this LSTM's 32 MiB of weights (the reviewer's repro once said no)
    edge = load_architecture("edge-npu-lpddr5", overrides={"memories.lpddr5.capacity": "512 MiB"})
    r = simulate(edge, load_workload("lstm:precision=int8"))
    assert r["latency_s"] > 0

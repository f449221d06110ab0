"""The engine against physics: rooflines, analytical systolic timing, energy by hand, contention."""
from __future__ import annotations

from math import ceil

import pytest

from dse.sim.engine import simulate
from dse.workloads.ops import Op, Workload

from archs import toy

SLOW_BW = 2 * 0.5e9  # two channels of 0.5 GB/s: slow enough that batch-4 GEMMs are memory-bound


def slow_toy(**changes):
    arch = toy(**changes)
    dram = arch.memories[0].model_copy(update={"bandwidth_per_channel": 0.5e9})
    return arch.model_copy(update={"memories": [dram]})


def gemm(m, n, k, name="g", deps=(), precision="int8"):
    return Op(name, "matmul", m=m, n=n, k=k, deps=tuple(deps), precision=precision)


def test_memory_bound_gemm_reaches_bandwidth_times_intensity():
    # batch 4: each weight byte is used for 4 MACs; weights stream from DRAM once
    m, n, k = 4, 2048, 2048
    wl = Workload("gemv", [gemm(m, n, k)], samples=m)
    r = simulate(slow_toy(), wl)
    ops = 2 * m * n * k
    dram_bytes = n * k  # int8 weights, activations stay in the on-chip buffer
    roof = SLOW_BW * ops / dram_bytes
    achieved = r["throughput_ops_per_s"]
    assert achieved <= roof * (1 + 1e-9)
    assert achieved >= 0.98 * roof
    assert r["bound"] == "dram"


def test_energy_is_counted_actions_times_energies_plus_power_times_time():
    m, n, k = 8, 512, 256
    arch = toy()
    r = simulate(arch, Workload("g", [gemm(m, n, k)], samples=m))
    t = r["latency_s"]
    cols = 16                                      # the toy array is 16 x 16
    # hand count of every action (weight stationary, activations resident in 'buf')
    macs = m * n * k
    dram_read_bits = n * k * 8                     # weights fetched once
    buf_write_bits = (n * k + m * n) * 8           # weights staged + outputs written
    buf_read_bits = (k * n + m * k * ceil(n / cols)) * 8  # weights once, inputs per column fold
    dynamic = (macs * 0.25e-12 + dram_read_bits * 10e-12
               + buf_write_bits * 0.2e-12 + buf_read_bits * 0.1e-12)
    static_power = 1 + 0.1 + 0.5 + 0.3 + 0.2       # leakage of pe, vec, buf, ctrl + DRAM background
    assert r["energy_j"] == pytest.approx(dynamic + static_power * t, rel=1e-9)
    assert r["energy_dram_j"] == pytest.approx(dram_read_bits * 10e-12 + 0.3 * t, rel=1e-9)


def test_two_units_sharing_a_memory_tier_each_take_longer_than_alone():
    arch = slow_toy(compute=[
        {**toy().compute[0].model_dump(), "name": "pe0"},
        {**toy().compute[0].model_dump(), "name": "pe1"},
    ])
    a, b = gemm(4, 1024, 1024, "a"), gemm(4, 1024, 1024, "b")
    alone = simulate(arch, Workload("a", [a])).ops.set_index("op")["latency_s"]["a"]
    both = simulate(arch, Workload("ab", [a, b])).ops.set_index("op")
    assert set(both["unit"]) == {"pe0", "pe1"}          # they really ran side by side
    assert both["latency_s"]["a"] > 1.3 * alone
    assert both["latency_s"]["b"] > 1.3 * alone
    # and together they cannot beat the shared bus: 2 x weights / bandwidth
    assert both["end_s"].max() >= 2 * 1024 * 1024 / SLOW_BW


def test_same_inputs_give_identical_results():
    wl = Workload("chain", [gemm(4, 512, 512, "a"), gemm(4, 512, 512, "b", deps=["a"]),
                            Op("act", "vector", elements=2048, deps=("b",))], samples=4)
    r1, r2 = simulate(toy(), wl), simulate(toy(), wl)
    assert r1.summary.equals(r2.summary)
    assert r1.ops.equals(r2.ops)


def test_outputs_that_overflow_the_buffer_spill_without_a_cliff():
    # TPU v1-like: fc2's output (4096 x 4352 int8 = 17 MiB) no longer fits the 24 MiB unified
    # buffer beside its input; it streams to DDR3 while inputs stay resident. Traffic stays
    # near compulsory (weights once, the output once) instead of re-reading everything.
    from dse.spec.loader import load_architecture

    tpu = load_architecture("tpu-v1-like")

    def chain(n):
        return Workload("c", [Op("fc1", "matmul", m=4096, k=1024, n=2048),
                              Op("fc2", "matmul", m=4096, k=2048, n=n, deps=("fc1",))])

    fits, spills = simulate(tpu, chain(4096)), simulate(tpu, chain(4352))
    weights = 1024 * 2048 + 2048 * 4352
    assert spills["bytes_read_ddr3"] <= 1.05 * weights
    assert spills["bytes_written_ddr3"] == 4096 * 4352
    assert spills["latency_s"] < 1.3 * fits["latency_s"]


def test_units_reading_one_sram_share_its_bandwidth():
    # two vector units, operands on chip in one 64 MiB SRAM of 10 GB/s: each op moves 2 MiB through it
    base = toy(placement={"weights": "buf", "activations": "buf"})
    vec = base.compute[1].model_dump()
    arch = base.model_copy(update={
        "compute": [type(base.compute[1]).model_validate({**vec, "name": "v0", "lanes": 4096}),
                    type(base.compute[1]).model_validate({**vec, "name": "v1", "lanes": 4096})],
        "sram": [base.sram[0].model_copy(update={"bandwidth": 10e9, "capacity": 64 * 2**20})]})
    a = Op("a", "vector", elements=2**20)
    b = Op("b", "vector", elements=2**20)
    alone = simulate(arch, Workload("a", [a]))
    both = simulate(arch, Workload("ab", [a, b]))
    port_s = 2 * 2**20 / 10e9                      # read 1 MiB + write 1 MiB, int8
    assert alone["latency_s"] == pytest.approx(port_s, rel=1e-6)
    assert both["latency_s"] == pytest.approx(2 * port_s, rel=0.05)   # shared, not parallel
    assert both.ops.set_index("op")["bound"]["a"] == "buf"
    assert both["busy_buf"] == pytest.approx(1.0, rel=0.05)


def test_a_consumer_reads_back_what_its_producer_wrote_off_chip():
    from dse.spec.loader import load_architecture

    tpu = load_architecture("tpu-v1-like")
    wl = Workload("c", [Op("fc1", "matmul", m=4096, k=1024, n=2048),
                        Op("fc2", "matmul", m=4096, k=2048, n=4352, deps=("fc1",)),
                        Op("fc3", "matmul", m=4096, k=4352, n=1024, deps=("fc2",))])
    r = simulate(tpu, wl)
    weights = 1024 * 2048 + 2048 * 4352 + 4352 * 1024
    spilled = 4096 * 4352                          # fc2's output did not fit the unified buffer
    assert r["bytes_written_ddr3"] == spilled
    assert r["bytes_read_ddr3"] == pytest.approx(weights + spilled, rel=0.01)   # fc3 reads it back

"""What makes real arrays miss their roofline, each against a hand count."""
from __future__ import annotations

from math import ceil

import pytest

from archs import toy
from dse.sim.engine import simulate
from dse.workloads import load_workload
from dse.workloads.ops import Op, Workload


def depthwise(channels: int = 512, hw: int = 14) -> Op:
    return Op("dw", "conv2d", batch=1, in_channels=channels, out_channels=channels, height=hw, width=hw,
              kernel_h=3, kernel_w=3, padding=1, groups=channels)


def big_array(lanes: int):
    return toy(compute__pe__rows=256, compute__pe__cols=256, compute__vec__lanes=lanes,
               sram=[{"name": "buf", "capacity": "64 MiB", "bandwidth": "100 TB/s",
                      "read_energy": "0.1 pJ/bit", "write_energy": "0.2 pJ/bit"}])


def test_a_depthwise_conv_packs_channels_across_the_array():
    # 512 depthwise 3x3 filters on 14x14: 903,168 MACs. One fold per channel would take
    # 512 x (2*256 + 256 - 2 + 196) cycles = 493 us at 1 GHz, slower than a 16-lane vector
    # unit (2 x 903,168 / 16 GHz = 113 us). Packed on the diagonal, 28 channels of 9 rows
    # share a fold: ceil(512 / 28) = 19 folds of 962 cycles = 18.3 us.
    op = depthwise()
    macs = 512 * 9 * 14 * 14
    assert op.macs == macs
    r = simulate(big_array(lanes=16), Workload("dw", [op]))
    row = r.ops.set_index("op").loc["dw"]
    vector_s = 2 * macs / (16 * 1e9)
    packed_s = ceil(512 / (256 // 9)) * (2 * 256 + 256 - 2 + 14 * 14) / 1e9
    assert row["unit"] == "pe"
    assert row["compute_s"] <= vector_s
    assert row["compute_s"] == pytest.approx(packed_s, rel=1e-9)


def test_a_depthwise_conv_runs_on_the_vector_unit_when_that_is_faster():
    # a 4096-lane vector unit does the same MACs in 2 x 903,168 / 4.096 TOPS = 0.44 us
    r = simulate(big_array(lanes=4096), Workload("dw", [depthwise()]))
    row = r.ops.set_index("op").loc["dw"]
    assert row["unit"] == "vec"
    assert row["compute_s"] == pytest.approx(2 * 512 * 9 * 14 * 14 / (4096 * 1e9), rel=1e-9)


def test_mobilenet_v2_is_no_longer_dominated_by_its_depthwise_layers():
    # MobileNetV2 [Sandler 2018]: 300 M MACs, 3.4 M weights; depthwise layers are ~7% of MACs
    from dse.spec.loader import load_architecture

    wl = load_workload("mobilenetv2")
    assert wl.macs == pytest.approx(300e6, rel=0.01)
    assert wl.weight_bytes() == pytest.approx(3.4e6, rel=0.03)      # int8: one byte per weight
    dw = [op.name for op in wl.ops if op.groups > 1]
    assert sum(op.macs for op in wl.ops if op.groups > 1) / wl.macs == pytest.approx(0.07, abs=0.01)
    r = simulate(load_architecture("tpu-v1-like"), wl)
    ops = r.ops.set_index("op")
    share = ops.loc[dw, "latency_s"].sum() / ops["latency_s"].sum()
    assert share < 0.6          # was 97% with a fold per channel


def test_weight_loads_are_in_series_without_a_weight_buffer_and_hidden_with_one():
    # weight stationary, M = 8 rows of input (below the 16 rows of the array), K = N = 64:
    # 4 x 4 = 16 folds. SCALE-Sim's fold is 2R + C + T - 2 = 32 + 16 + 8 - 2 = 54 cycles, of
    # which R = 16 shift the fold's weights in. Double-buffered, the next fold's weights shift
    # in while the current one streams its T = 8 rows: each fold after the first hides 8.
    op = Op("mm", "matmul", m=8, n=64, k=64)
    single = simulate(toy(), Workload("w", [op])).ops.set_index("op").loc["mm"]
    double = simulate(toy(compute__pe__weight_buffers=2), Workload("w", [op])).ops.set_index("op").loc["mm"]
    folds, fold = 16, 2 * 16 + 16 + 8 - 2
    assert single["compute_s"] == pytest.approx(folds * fold / 1e9, rel=1e-9)
    assert double["compute_s"] == pytest.approx((folds * fold - (folds - 1) * 8) / 1e9, rel=1e-9)
    # the weight load still shows: with T < R only T of the R cycles hide behind streaming
    assert double["compute_s"] > folds * (fold - 16) / 1e9


def test_register_file_energy_is_accesses_times_energy_per_access():
    # 4 register accesses per MAC (two operand reads, a partial-sum read and write: Eyeriss)
    op = Op("mm", "matmul", m=64, n=64, k=64)
    e = 0.03e-12
    plain = simulate(toy(), Workload("w", [op]))
    rf = simulate(toy(compute__pe__register_file_energy=f"{e * 1e12} pJ"), Workload("w", [op]))
    accesses = 4 * 64 * 64 * 64
    assert rf["energy_pe_register_file_j"] == pytest.approx(accesses * e, rel=1e-9)
    assert rf["energy_pe_j"] - plain["energy_pe_j"] == pytest.approx(accesses * e, rel=1e-9)


def test_a_chain_of_dependent_batch_one_layers_exposes_fill_and_drain():
    # eight dependent 256-wide layers at batch 1 on a 16 x 16 array: every layer waits for its
    # producer's write-back, so the chain takes at least the sum, over layers, of filling and
    # draining the array (R + C - 1 = 31 cycles) once for each of its (256/16)^2 = 256 folds
    ops = [Op("l0", "matmul", m=1, n=256, k=256)]
    ops += [Op(f"l{i}", "matmul", m=1, n=256, k=256, deps=(f"l{i - 1}",)) for i in range(1, 8)]
    r = simulate(toy(), Workload("chain", ops))
    per_layer = 256 * (16 + 16 - 1) / 1e9
    assert r["latency_s"] >= 8 * per_layer
    starts = r.ops.set_index("op")
    for i in range(1, 8):   # read after write: no layer starts before its producer ended
        assert starts.loc[f"l{i}", "start_s"] >= starts.loc[f"l{i - 1}", "end_s"]


def test_elementwise_work_sits_on_the_critical_path_unless_it_streams():
    # a GEMM and the activation after it, on the array and the vector unit: serialised, the
    # run takes at least both compute times; nothing may finish faster than the slower one
    op = Op("mm", "matmul", m=256, n=256, k=256)
    act = Op("act", "vector", elements=256 * 256, ops_per_element=16, deps=("mm",))
    r = simulate(toy(), Workload("w", [op, act]))
    ops = r.ops.set_index("op")
    assert r["latency_s"] >= ops.loc["mm", "compute_s"] + ops.loc["act", "compute_s"]

"""Fast-forwarding identical tiles in chunks equals simulating every tile on its own."""
from __future__ import annotations

import pytest

from dse.sim.engine import simulate
from dse.workloads.ops import Op, Workload

from archs import toy


def dram_only(bw_per_channel: float, capacity="64 KiB"):
    arch = toy(placement={"weights": "dram", "activations": "dram"})
    dram = arch.memories[0].model_copy(update={"bandwidth_per_channel": bw_per_channel})
    buf = arch.sram[0].model_copy(update={"capacity": float(capacity.split()[0]) * 1024})
    return arch.model_copy(update={"memories": [dram], "sram": [buf]})


CASES = {
    # (m, n, k), DRAM bandwidth per channel: memory-bound, compute-bound and balanced pipelines
    "memory_bound": ((16, 512, 512), 0.2e9),
    "compute_bound": ((512, 512, 512), 50e9),
    "balanced": ((128, 512, 512), 2e9),
}


@pytest.mark.parametrize("case", CASES)
def test_chunks_equal_tile_by_tile_for_one_op(case):
    (m, n, k), bw = CASES[case]
    arch = toy(placement={"weights": "dram", "activations": "buf"})
    resident = m * k + m * n  # int8 activations held in the buffer; 16 KiB left to stage weight tiles
    arch = arch.model_copy(update={"memories": [arch.memories[0].model_copy(
        update={"bandwidth_per_channel": bw})], "sram": [arch.sram[0].model_copy(
            update={"capacity": resident + 16 * 1024})]})
    wl = Workload("g", [Op("g", "matmul", m=m, n=n, k=k)])
    # event by event (an op alone would otherwise run in closed form, with no chunk events)
    full = simulate(arch, wl, max_chunks=None, closed_form=False)
    fast = simulate(arch, wl, max_chunks=4, closed_form=False)
    assert full.ops["n_tiles"][0] >= 16                     # a real fast-forward happened
    assert fast["sim_events"] < full["sim_events"]
    assert fast["latency_s"] == pytest.approx(full["latency_s"], rel=1e-9)
    assert fast["energy_j"] == pytest.approx(full["energy_j"], rel=1e-9)


@pytest.mark.parametrize("bw", [0.2e9, 2e9, 50e9])
def test_chunks_close_to_tile_by_tile_when_loads_and_stores_share_a_bus(bw):
    # inputs, weights and outputs all in DRAM: loads and stores queue on one bus.
    # Tile by tile, a load throttled by double buffering can land behind a store and
    # stall the array; chunks let loads run ahead, so they are slightly optimistic.
    # Measured: 0% (memory-bound), -1.2% (balanced), -2.1% (compute-bound); bound: 3%.
    arch = dram_only(bw)
    wl = Workload("g", [Op("a", "matmul", m=256, n=256, k=256),
                        Op("b", "vector", elements=65536, deps=("a",))])
    full = simulate(arch, wl, max_chunks=None)
    fast = simulate(arch, wl, max_chunks=8)
    assert fast["latency_s"] == pytest.approx(full["latency_s"], rel=0.03)
    assert fast["energy_j"] == pytest.approx(full["energy_j"], rel=0.03)


def test_chunks_keep_the_double_buffer_pace_when_latency_exceeds_a_tile():
    # On the H100-class design a GEMV tile moves in far less than HBM's 32.5 ns latency:
    # tile i+2 must wait for tile i to arrive and be computed, which sets the pace.
    from dse.spec.loader import load_architecture
    from dse.workloads import load_workload

    h100 = load_architecture("h100-class")
    gemv = load_workload("gemm:m=1,n=768,k=768,precision=bf16")
    full, fast = simulate(h100, gemv, max_chunks=None), simulate(h100, gemv)
    assert fast["latency_s"] == pytest.approx(full["latency_s"], rel=1e-6)
    n = full.ops["n_tiles"][0]
    tile_s = 768 * 768 * 2 / n / 3.35e12
    assert 32.5e-9 > tile_s                                  # the case this test is about
    assert full["latency_s"] >= n / 2 * (32.5e-9 + tile_s)   # hand bound: two tiles per latency round trip
    decode = load_workload("gpt:phase=decode,layers=2")
    assert simulate(h100, decode)["latency_s"] == pytest.approx(
        simulate(h100, decode, max_chunks=None)["latency_s"], rel=0.02)


def test_a_streaming_consumer_overlaps_its_producer_and_ends_one_tile_after_it():
    # a GEMM feeding an elementwise op: waiting for the whole GEMM serialises them; streaming
    # lets the vector op start on the GEMM's first tile and end one of its own tiles after it
    from dse.spec.loader import load_architecture

    h100 = load_architecture("h100-class")
    wl = Workload("g", [Op("mm", "matmul", m=8192, k=4096, n=4096, precision="bf16"),
                        Op("act", "vector", elements=8192 * 4096, ops_per_element=8, deps=("mm",),
                           precision="bf16")])
    whole = simulate(h100, wl)
    stream = simulate(h100, wl, streaming=True)
    w, s = whole.ops.set_index("op"), stream.ops.set_index("op")
    assert w.loc["act", "start_s"] >= w.loc["mm", "end_s"]                  # serialised
    assert s.loc["act", "start_s"] < s.loc["mm", "end_s"]                   # overlapped
    act_tile = s.loc["act", "compute_s"] / s.loc["act", "n_tiles"]
    assert s.loc["act", "end_s"] >= s.loc["mm", "end_s"] + act_tile * (1 - 1e-9)
    # overlap can only slow the producer (they share the buffer's port); the pair can be no
    # faster than its slower member alone
    assert s.loc["mm", "latency_s"] >= w.loc["mm", "latency_s"]
    assert stream["latency_s"] < whole["latency_s"]
    assert stream["latency_s"] >= max(w.loc["mm", "latency_s"], w.loc["act", "latency_s"])


def test_the_unit_pool_serves_tasks_as_simpys_filter_store_does(monkeypatch):
    # the pool keeps one queue per set of allowed units (linear, not quadratic, in waiting
    # tasks); SimPy's own FilterStore is the reference for which task gets which unit when
    import simpy

    from dse.sim import machine as M
    from dse.spec.loader import load_architecture
    from dse.workloads import load_workload

    class FilterStorePool:
        def __init__(self, env, names):
            self.store = simpy.FilterStore(env, capacity=len(names))
            self.store.items.extend(names)

        def take(self, allowed):
            return None  # always through the store

        def get(self, allowed):
            return self.store.get(lambda u: u in allowed)

        def put(self, name):
            self.store.put(name)

    # two arrays, one of which also runs bf16: int8 GEMMs may take either, bf16 ones only the
    # second, so tasks wait in overlapping sets and a freed array has two queues to serve
    units = toy().model_dump()["compute"]
    both = {**units[0], "name": "pe2", "macs_per_cycle": {"int8": 1, "bf16": 0.5},
            "energy_per_mac": {"int8": 0.25e-12, "bf16": 1e-12}}
    two = toy(compute=[*units, both])
    many = Workload("many", [Op(f"g{i}", "matmul", m=64, n=64, k=64 * (1 + i % 3),
                                precision="bf16" if i % 3 == 0 else "int8") for i in range(40)]
                    + [Op(f"v{i}", "vector", elements=4096 * (1 + i % 5)) for i in range(20)])
    cases = [(two, many), (load_architecture("h100-class"), load_workload("resnet50", batch=4)),
             (load_architecture("dram-nvm-tiered"), load_workload("lstm:seq=4"))]
    # event by event: the closed form needs the pool's counts of waiting tasks
    ours = [simulate(a, w, closed_form=False) for a, w in cases]
    monkeypatch.setattr(M, "UnitPool", FilterStorePool)
    theirs = [simulate(a, w, closed_form=False) for a, w in cases]
    for a, b in zip(ours, theirs):
        assert a.ops.equals(b.ops)
        # the same schedule; the store spends an event where the pool hands a free unit at once
        assert a.summary.drop(columns="sim_events").equals(b.summary.drop(columns="sim_events"))

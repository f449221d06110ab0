"""A residual add reads each of its two inputs from where that input's producer put it, and
keeps the skip connection's tensor alive until it has read it (hand counts on a toy design)."""
from __future__ import annotations

from archs import toy

from dse.sim.engine import simulate
from dse.workloads.ops import Op, Workload

N = 300 * 1024  # elements of every tensor (int8: one byte each)


def _skip_workload() -> Workload:
    """a -> b -> add(b, a): ``a``'s output is the skip connection."""
    return Workload("skip", [
        Op("a", "vector", elements=N),
        Op("b", "vector", elements=N, deps=("a",)),
        Op("add", "vector", elements=N, inputs=2, deps=("b", "a"), tag="residual"),
    ])


def _run():
    # 512 KiB of SRAM: one 300 KiB activation fits on chip, two do not
    arch = toy(sram=[{"name": "buf", "capacity": "512 KiB", "bandwidth": "1 TB/s", "read_energy": "0.1 pJ/bit",
                      "write_energy": "0.2 pJ/bit", "leakage": "0.5 W", "area": "1 mm^2"}])
    result = simulate(arch, _skip_workload())
    return result, result.ops.set_index("op")


def test_add_reads_each_input_from_its_producers_home():
    _, ops = _run()
    # each producer writes only its output: what it wrote to DRAM is the part of that output
    # held there. The premise: one output is held on chip, the other off (in part at least)
    from_a, from_b = ops.loc["a", "bytes_written_dram"], ops.loc["b", "bytes_written_dram"]
    assert min(from_a, from_b) == 0 < max(from_a, from_b) <= N
    # the add reads each input once, from where it is: from DRAM exactly what is held there
    # (both inputs read from b's home would be 2 x from_b)
    assert ops.loc["add", "bytes_read_dram"] == from_a + from_b


def test_skip_tensor_lives_until_the_add():
    result, _ = _run()
    # when the add runs, a's output (the skip), b's output and the add's own output are all
    # held: three tensors of N bytes in SRAM and DRAM together
    peak = sum(result.summary[c].iloc[0] for c in result.summary.columns if c.startswith("peak_bytes_"))
    assert peak >= 3 * N

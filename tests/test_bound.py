"""The run's bound names its busiest resource. Busy times that differ only by float rounding
are a tie, so the closed form and the event-by-event run (which add the same times in other
orders) name the same resource; and of a buffer and the array it feeds, busy alike because
the buffer paces the array, the buffer is named."""
from __future__ import annotations

from archs import toy
from dse.sim.engine import simulate
from dse.workloads.ops import Op, Workload


def _starved():
    """A toy chip whose 1 GB/s buffer feeds its array: both are busy for the whole run, and the
    two runs' busy times for them differ in the 15th digit (a reviewer's random case)."""
    units = toy().model_dump()["compute"]
    sram = {**toy().model_dump()["sram"][0], "bandwidth": "1 GB/s"}
    arch = toy(compute=units, sram=[sram], placement={"weights": "dram", "activations": "dram"})
    shapes = [(32, 64, 128, ()), (32, 128, 64, ("g0",)), (32, 128, 64, ()), (128, 128, 512, ()),
              (256, 64, 256, ("g3",)), (256, 64, 256, ()), (128, 256, 64, ()), (128, 64, 512, ()),
              (32, 64, 256, ("g2",)), (256, 64, 512, ("g0", "g3"))]
    ops = [Op(f"g{i}", "matmul", m=m, n=n, k=k, deps=deps) for i, (m, n, k, deps) in enumerate(shapes)]
    return arch, Workload("starved", ops)


def test_resources_busy_for_the_same_time_up_to_rounding_are_one_bound_in_both_runs():
    arch, wl = _starved()
    fast = simulate(arch, wl, max_chunks=None).summary_row
    slow = simulate(arch, wl, max_chunks=None, closed_form=False).summary_row
    for row in (fast, slow):
        # the buffer (1 GB/s) starves the array: both busy nearly the whole run, a tie
        assert row["busy_buf"] > 0.99 and abs(row["busy_buf"] - row["busy_pe"]) < 1e-12
        assert row["busy_dram"] < 0.1
    # the array alone (2 ops per MAC, rows x cols MACs a cycle) would take a few % of the run:
    # the 1 GB/s buffer is what bounds it
    pe = arch.compute[0]
    assert sum(op.ops for op in wl.ops) / (2 * pe.rows * pe.cols * pe.clock) < 0.1 * fast["latency_s"]
    assert fast["bound"] == slow["bound"] == "buf"


def test_tied_tiers_are_named_the_same_in_every_process():
    """An op's per-tier times are listed in the order the plan names its tiers, not a set's,
    which changes with PYTHONHASHSEED: where two tiers tie, every process names the same one."""
    import os
    import subprocess
    import sys

    code = ("from dse.sim.cost import OpPlan; from dse.workloads.ops import Op; "
            "p = OpPlan(Op('x', 'vector'), 'u', 0.0, 1, read_s={'optane': 1.0, 'hbm3': 1.0, 'ddr4': 1.0}, "
            "write_s={'lpddr5': 1.0, 'nvm': 1.0}); print(list(p.transfer_s()))")
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(6)}
    assert seen == {"['optane', 'hbm3', 'ddr4', 'lpddr5', 'nvm']\n"}

"""simulate() against a vectorised roofline over the same ops (issue 13 item 3).

For ResNet-50 (batch 1) and a 12-layer GPT (prefill, 1,024 tokens) on every bundled design
that runs them, prints the CPU time of ``simulate()`` (a new design: tiling caches cleared,
as in a sweep), the time of a vectorised roofline over the same ops (per-op operations and
operand bytes gathered from the workload into numpy arrays, then max(ops / peak, bytes /
bandwidth) summed), and their ratio; and the same for the event-by-event run
(``closed_form=False``) so the shortcut's gain shows in one run. Target: at most 20x.

    python benchmarks/bench_engine_roofline.py [design ...]
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from dse.errors import DseError
from dse.sim.engine import simulate
from dse.sim.tiling import clear_caches
from dse.spec.loader import bundled_names, load_architecture
from dse.workloads import load_workload

REPEATS = 40
WORKLOADS = ["resnet50", "gpt:layers=12"]


def roofline_s(arch, workload) -> float:
    """Seconds of the bound itself; what the vectorised roofline costs is timed around it."""
    ops = workload.ops
    work = np.fromiter((op.ops for op in ops), float, len(ops))
    moved = np.fromiter((sum(t["bytes"] for t in op.tensor_bytes().values()) for op in ops), float, len(ops))
    peak = sum(u.peak_ops() for u in arch.compute)
    bandwidth = max(m.bandwidth for m in arch.memories)
    return float(np.maximum(work / peak, moved / bandwidth).sum())


def timed(fn, *args, **kw) -> float:
    cpu = []  # CPU seconds of this process, the least of the repeats: other work only adds
    for _ in range(REPEATS):
        clear_caches()
        t0 = time.process_time()
        fn(*args, **kw)
        cpu.append(time.process_time() - t0)
    return min(cpu)


def main(names: list[str]) -> None:
    print(f"{'design':18s} {'workload':14s} {'ops':>4s} {'roofline':>9s} {'simulate':>9s} {'ratio':>6s}"
          f" {'events-only':>11s} {'ratio':>6s}")
    ratios = []
    for name in names or bundled_names("architectures"):
        arch = load_architecture(name)
        for w in WORKLOADS:
            wl = load_workload(w)
            try:
                simulate(arch, wl)
            except DseError:
                continue  # the design cannot run it (too little SRAM for a tile, ...)
            roof = timed(roofline_s, arch, wl)
            fast = timed(simulate, arch, wl)
            slow = timed(simulate, arch, wl, closed_form=False)
            ratios.append(fast / roof)
            print(f"{name:18s} {w:14s} {len(wl.ops):4d} {roof * 1e3:7.2f}ms {fast * 1e3:7.2f}ms {fast / roof:5.1f}x"
                  f" {slow * 1e3:9.2f}ms {slow / roof:5.1f}x")
    print(f"median simulate / roofline: {statistics.median(ratios):.1f}x (target <= 20x), worst {max(ratios):.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:])

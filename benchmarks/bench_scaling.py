"""How simulate() scales with the number of ops: independent ops against a dependent chain.

Issue #13's target: 10,000 independent ops simulate in at most 3x the time of a 10,000-op
chain (they used to scale quadratically: every waiting task was re-checked at each release
of a compute unit). Prints CPU seconds for 2,500, 5,000 and 10,000 ops of each shape.
"""
from __future__ import annotations

import time

from dse.sim.engine import simulate
from dse.spec.loader import load_architecture
from dse.workloads.ops import Op, Workload


def ops(n: int, chained: bool) -> Workload:
    return Workload("chain" if chained else "independent",
                    [Op(f"m{i}", "matmul", m=64, n=256, k=256, deps=(f"m{i - 1}",) if chained and i else ())
                     for i in range(n)])


def cpu_s(arch, wl) -> float:
    t0 = time.process_time()
    simulate(arch, wl)
    return time.process_time() - t0


def main() -> None:
    arch = load_architecture("tpu-v1-like")
    print(f"{'ops':>6} {'independent s':>14} {'chain s':>8} {'ratio':>6}")
    for n in (2500, 5000, 10000):
        ind, ch = cpu_s(arch, ops(n, False)), cpu_s(arch, ops(n, True))
        print(f"{n:>6} {ind:>14.2f} {ch:>8.2f} {ind / ch:>6.2f}")


if __name__ == "__main__":
    main()

"""Core engine speed: wall time and SimPy events per second per bundled design.

Prints, for every bundled architecture, the wall time of simulate() (median of
repeats, planning included, workload generation excluded) and the simulated
events per second for resnet50 at batch 1 and 32 and a 4-layer mlp; and, in the
same run, the event rate of a bare SimPy loop (one Resource request plus one
timeout per event) as the reference. Targets (issue #2): ResNet-50 batch 1
under 0.5 s per design; engine event rate at least half the bare-SimPy rate.
"""
from __future__ import annotations

import statistics
import time

import simpy

from dse.sim.engine import simulate
from dse.sim.tiling import clear_caches
from dse.spec.loader import bundled_names, load_architecture
from dse.workloads import load_workload

REPEATS = 5


def bare_simpy_rate(n: int = 200_000) -> float:
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=1)

    def proc():
        for _ in range(n // 2):
            with res.request() as req:
                yield req
                yield env.timeout(1e-9)

    env.process(proc())
    start_eid = next(env._eid)
    t0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t0
    return (next(env._eid) - start_eid) / wall


def bench(arch, workload) -> tuple[float, float, int]:
    walls, runs = [], []
    for _ in range(REPEATS):
        clear_caches()  # a new design in a sweep plans from scratch
        t0 = time.perf_counter()
        r = simulate(arch, workload)
        walls.append(time.perf_counter() - t0)
        runs.append(r.timing["run_s"])
    return statistics.median(walls), statistics.median(runs), r["sim_events"]


def main() -> None:
    ref = bare_simpy_rate()
    print(f"bare SimPy (request + timeout): {ref:,.0f} events/s")
    cases = [("resnet50 b1", "resnet50", 1), ("resnet50 b32", "resnet50", 32), ("mlp 4 layers", "mlp", None)]
    print("wall s: simulate() end to end (planning + SimPy run); events/s: events over the SimPy run time;")
    print("events/s (wall): events over the whole wall time")
    print(f"{'architecture':<17} {'workload':<13} {'wall s':>7} {'events':>7} {'events/s':>10} "
          f"{'vs bare':>7} {'events/s (wall)':>15} {'vs bare':>7}")
    for name in bundled_names("architectures"):
        arch = load_architecture(name)
        for label, wl, batch in cases:
            workload = load_workload(wl, batch=batch)
            simulate(arch, workload)  # first call pays one-off imports
            wall, run, events = bench(arch, workload)
            rate, wall_rate = events / run, events / wall
            print(f"{name:<17} {label:<13} {wall:>7.3f} {events:>7} {rate:>10,.0f} {rate / ref:>7.2f} "
                  f"{wall_rate:>15,.0f} {wall_rate / ref:>7.2f}")


if __name__ == "__main__":
    main()

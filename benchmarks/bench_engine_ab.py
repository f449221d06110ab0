"""simulate() CPU time, this checkout against another one (a baseline revision), in one run.

    git worktree add /tmp/base <revision>
    python benchmarks/bench_engine_ab.py /tmp/base

Runs the same cases in each checkout by turns (A, B, A, B), each in a fresh process, and
prints the fastest CPU time (time.process_time, less sensitive to other load than wall time)
of every bundled design on ResNet-50 (batch 1 and 32) and the default MLP, with the ratio.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

CASES = [("resnet50", 1), ("resnet50", 32), ("mlp", None)]
REPEATS = 5

MEASURE = """
import statistics, time
from dse.sim.engine import simulate
from dse.sim.tiling import tile_gemm, tile_vector
try:
    from dse.sim.tiling import clear_caches  # every planning memo, as a new design sees them
except ImportError:  # (a revision before it)
    def clear_caches():
        tile_gemm.cache_clear(); tile_vector.cache_clear()
from dse.spec.loader import bundled_names, load_architecture
from dse.workloads import load_workload
out = {}
for name in bundled_names("architectures"):
    try:
        arch = load_architecture(name)
    except Exception:
        continue  # a system file, or a design this revision cannot read
    for wl_name, batch in %r:
        wl = load_workload(wl_name, batch=batch)
        try:
            simulate(arch, wl)
        except Exception:
            continue
        times = []
        for _ in range(%d):
            clear_caches()
            t0 = time.process_time(); simulate(arch, wl); times.append(time.process_time() - t0)
        out[(name, wl_name, batch)] = min(times)
print(repr(out))
""" % (CASES, REPEATS)


def measure(checkout: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    proc = subprocess.run([sys.executable, "-c", MEASURE], cwd=checkout, env=env, capture_output=True,
                          text=True, check=True)
    return ast.literal_eval(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    here, base = Path(__file__).resolve().parents[1], Path(sys.argv[1]).resolve()
    runs = {"baseline": [], "this": []}
    for _ in range(2):
        runs["baseline"].append(measure(base))
        runs["this"].append(measure(here))
    keys = [k for k in runs["this"][0] if all(k in r for r in runs["baseline"])]
    print(f"{'architecture':<17} {'workload':<14} {'baseline ms':>11} {'this ms':>8} {'ratio':>6}")
    tb = tt = 0.0
    for k in keys:
        b = min(r[k] for r in runs["baseline"])
        t = min(r[k] for r in runs["this"])
        tb, tt = tb + b, tt + t
        label = f"{k[1]} b{k[2]}" if k[2] else k[1]
        print(f"{k[0]:<17} {label:<14} {b * 1e3:>11.1f} {t * 1e3:>8.1f} {t / b:>6.2f}")
    print(f"{'all':<17} {'':<14} {tb * 1e3:>11.1f} {tt * 1e3:>8.1f} {tt / tb:>6.2f}")


if __name__ == "__main__":
    main()

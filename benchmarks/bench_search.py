"""Search throughput: trials per minute for the quick start and for an 8-parameter
study on ResNet-50 batch 1 (the space of studies/tpu-v1-75w.yaml), with 1 and 2 jobs.

    python benchmarks/bench_search.py                 # 1,000-trial ResNet-50 runs (a few minutes)
    python benchmarks/bench_search.py --trials 200    # quicker

Wall times include resolving the study, the SQLite storage in a fresh output
directory, worker start-up and writing the tables. Target: 1,000 trials of the
ResNet-50 study in under 15 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import optuna

from dse.search.resolve import load_spec
from dse.search.study import run_study
from dse.search.study_spec import StudySpec
from dse.search.tables import ALL


def resnet_study() -> StudySpec:
    """tpu-v1-75w's eight parameters, on ResNet-50 batch 1 alone."""
    spec, _, _ = load_spec("tpu-v1-75w")
    return StudySpec.model_validate({**spec.model_dump(), "name": "bench-resnet50",
                                     "workloads": ["resnet50:batch=1"]})


def run(study, name: str, n_trials: int | None, jobs: int) -> tuple[int, float, list[float]]:
    """Trials run, wall seconds and each trial's completion time, in a fresh output directory."""
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as tmp:
        t0 = time.perf_counter()
        df = run_study(study, n_trials=n_trials, jobs=jobs, out_dir=Path(tmp))
        wall = time.perf_counter() - t0
        trials = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp}/study.db").get_trials()
        ends = sorted(t.datetime_complete.timestamp() for t in trials if t.datetime_complete)
    return int((df["workload"] == ALL).sum()), wall, ends


def rate_by_segment(ends: list[float], size: int) -> list[float]:
    """Trials per minute over consecutive segments of ``size`` trials (shows TPE's growing cost)."""
    out = []
    for i in range(size, len(ends) + 1, size):
        span = ends[i - 1] - (ends[i - size - 1] if i > size else ends[0])
        out.append((size if i > size else size - 1) / span * 60 if span > 0 else float("nan"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000, help="trials of the ResNet-50 study")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"cores: {os.cpu_count()}")
    print(f"{'study':<28}{'jobs':>5}{'trials':>8}{'wall s':>9}{'trials/min':>12}")
    rows = []
    for jobs in (1, 2):
        n, wall, _ = run("quickstart", "quickstart", None, jobs)
        rows.append(("quickstart (mlp, 3 params)", jobs, n, wall))
        print(f"{rows[-1][0]:<28}{jobs:>5}{n:>8}{wall:>9.1f}{n / wall * 60:>12.0f}", flush=True)
    study = resnet_study()
    for jobs in (1, 2):
        n, wall, ends = run(study, study.name, args.trials, jobs)
        print(f"{'resnet50 b1 (8 params)':<28}{jobs:>5}{n:>8}{wall:>9.1f}{n / wall * 60:>12.0f}", flush=True)
        segs = rate_by_segment(ends, max(args.trials // 5, 1))
        print(f"{'':<28}trials/min per fifth of the run: {', '.join(f'{r:.0f}' for r in segs)}")
        print(f"{'':<28}projected 1,000 trials: {1000 / n * wall / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()

"""Screening: candidate designs estimated per second, and the two-stage study (screen, then
simulate the best) against the full study on every bundled study.

    python benchmarks/bench_screen.py                 # all bundled studies (a few minutes)
    python benchmarks/bench_screen.py --only quickstart
    python benchmarks/bench_screen.py --only multiobjective --keep 10

For each study the full study runs as its file says; the two-stage run adds
``screen: {simulate: K}``. K counts designs, and each design is simulated on every workload of
the study, so K designs cost K x W simulate() calls (W workloads). The target counts
simulate() calls, so K is the most designs whose calls are at most a tenth of the full study's
counted calls: K = floor(full calls / (10 x W)), at least 1 (a study whose full run has fewer
than 10 x W calls cannot be 10x cheaper and is reported as such). simulate() calls are counted
around each call.
Targets (issue 13): at least 100,000 candidates per second; a best design within 1% of the
full study's best objective with at least 10x fewer simulate() calls.
"""
from __future__ import annotations

import argparse
import os
import time

import optuna

import dse.serving
import dse.system.study
from dse.errors import SpecError
from dse.search import objective
from dse.search.resolve import bundled_studies, load_spec, resolve_study
from dse.search.screen import sample
from dse.search.two_stage import screen_for
from dse.search.study import run_study
from dse.search.study_spec import StudySpec
from dse.search.tables import ALL

CALLS = [0]


def _counted(fn):
    def call(*args, **kwargs):
        CALLS[0] += 1
        return fn(*args, **kwargs)
    return call


def count_simulations() -> None:
    """Count every simulation a trial runs: one chip, a serving run, a system's step."""
    objective.simulate = _counted(objective.simulate)
    dse.serving.simulate_serving = _counted(dse.serving.simulate_serving)
    dse.system.study.simulate = _counted(dse.system.study.simulate)


def throughput(name: str, n: int) -> tuple[int, float, float]:
    """Candidates evaluated (a grid of at most n points is evaluated whole, once) and
    candidates per second of CPU and of wall time (sampling included)."""
    st = resolve_study(name)
    screen = screen_for(st)
    screen.evaluate(sample(st, 1000, 1))  # build the per-combination designs once
    wall, cpu = time.perf_counter(), time.process_time()
    values = sample(st, n, 0)
    screen.evaluate(values)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    got = len(next(iter(values.values())))
    return got, got / cpu, got / wall


def best(df, st) -> float:
    o = st.objectives[0]
    feasible = df[(df["workload"] == ALL) & df["feasible"]][o.metric]
    if feasible.empty:
        return float("nan")
    return float(feasible.max() if o.direction == "maximize" else feasible.min())


def errors(st, full) -> str:
    """The screen's estimate against the simulation of every design of the full study, per
    objective and constrained metric: least, median and largest relative error (estimate / simulated - 1)."""
    import numpy as np

    done = full[(full["workload"] == ALL) & (full["state"] == "COMPLETE")]
    if done.empty:
        return ""
    values = {p.path: done[f"param_{p.path}"].to_numpy() for p in st.space.parameters}
    est = screen_for(st).evaluate(values)
    out = []
    metrics = [o.metric for o in st.objectives] + [c.metric for c in st.constraints if c.metric is not None]
    for metric in dict.fromkeys(metrics):
        if metric not in est or metric not in done:
            continue
        sim = done[metric].to_numpy(dtype=float)
        err = est[metric] / sim - 1
        err = err[np.isfinite(err)]
        if len(err):
            out.append(f"{metric}: {100 * err.min():+.1f}% / {100 * np.median(err):+.1f}% / "
                       f"{100 * err.max():+.1f}% over {len(err)}")
    return "; ".join(out)


def compare(name: str, keep: int | None = None) -> None:
    spec, _, _ = load_spec(name)
    if spec.screen is not None:
        print(f"{name:<20}(already two-stage: the screened form of another study)")
        return
    st = resolve_study(spec)
    o = st.objectives[0]
    try:
        screen_for(st)
    except SpecError as exc:
        print(f"{name:<20}cannot be screened: {exc.message}", flush=True)
        return
    CALLS[0] = 0
    t = time.perf_counter()
    full = run_study(spec)
    full_s, full_calls = time.perf_counter() - t, CALLS[0]
    trials = int((full["workload"] == ALL).sum())
    per_design = len(st.workloads)   # simulate() calls per design simulated
    keep = keep or max(1, full_calls // (10 * per_design))
    CALLS[0] = 0
    t = time.perf_counter()
    two = run_study(StudySpec.model_validate({**spec.model_dump(), "screen": {"simulate": keep}}))
    two_s, two_calls = time.perf_counter() - t, CALLS[0]
    b_full, b_two = best(full, st), best(two, st)
    gap = (b_full - b_two) / abs(b_full) if o.direction == "maximize" else (b_two - b_full) / abs(b_full)
    print(f"{name:<20}{o.direction[:3]} {o.metric:<22}{trials:>6}{full_calls:>7}{b_full:>12.5g}{full_s:>8.1f}"
          f"{keep:>6}{two_calls:>7}{b_two:>12.5g}{two_s:>8.1f}{full_calls / max(two_calls, 1):>8.1f}x"
          f"{100 * gap:>+9.2f}%", flush=True)
    if b_two != b_two:
        print(f"{'':<20}the designs simulated in two stages are all infeasible in simulation", flush=True)
    if two_calls * 10 > full_calls:
        print(f"{'':<20}{two_calls} simulate() calls: more than a tenth of the full study's {full_calls}",
              flush=True)
    print(f"{'':<20}estimate vs simulated (least / median / largest error): {errors(st, full)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="one bundled study")
    ap.add_argument("--candidates", type=int, default=100_000)
    ap.add_argument("--keep", type=int, help="designs the two-stage run simulates (default: the rule above)")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    count_simulations()
    names = [args.only] if args.only else bundled_studies()
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'study':<20}{'candidates':>11}{'candidates/s (CPU)':>20}{'candidates/s (wall)':>21}")
    for name in names:
        try:
            got, cpu, wall = throughput(name, args.candidates)
        except SpecError as exc:
            print(f"{name:<20}cannot be screened: {exc.message}", flush=True)
            continue
        print(f"{name:<20}{got:>11,}{cpu:>20,.0f}{wall:>21,.0f}", flush=True)
    print("\nfull study vs two-stage (gap: how much worse the two-stage best is; negative = better)")
    print(f"{'study':<20}{'objective':<26}{'trials':>6}{'sims':>7}{'best':>12}{'s':>8}"
          f"{'keep':>6}{'sims':>7}{'best':>12}{'s':>8}{'fewer':>9}{'gap':>10}")
    for name in names:
        compare(name, args.keep)


if __name__ == "__main__":
    main()

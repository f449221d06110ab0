"""Search throughput on the 8-parameter ResNet-50 study (the space of studies/tpu-v1-75w.yaml on
ResNet-50 batch 1): per-trial cost against simulate(), and trials per minute with 1 and 2 jobs.

    python benchmarks/bench_search.py                               # 1,000 trials, this checkout
    python benchmarks/bench_search.py --trials 300 --baseline 35534f0   # and a git revision
    python benchmarks/bench_search.py --sampler random              # and the trial without TPE's model

Each measurement runs in a fresh process with a fresh output directory (default storage),
so wall times include opening the storage, starting workers and writing the tables. With
one job, the process's CPU time is split into simulate() (timed around each call) and the
rest, of which "ms sampler" is Optuna's suggestions (the TPE sampler fits its estimators there,
at a cost that grows with the trials done), "ms storage" the trial's rows written and counted
(dse.search.record) and "ms rest" everything else (designs built, Optuna's ask and tell, tables,
opening the storage); this checkout also runs at the study's own budget (200 trials), where the
sampler costs less per trial. Under each one-job line, what the target leaves for all but simulate() (half a
simulate()) against what it costs, and the sampler's part of that; ``--sampler random`` runs the same trials with
Optuna's random sampler as well, whose suggestions cost next to nothing: what the rest of the trial costs. "all CPU s" adds the worker processes' CPU time (what --jobs N spends in all). The
steady-state line gives the rate over the middle 80% of the trials (from the storage's completion times), without
a run's fixed start and end (opening the storage, the workers' start-up, the final tables), which a short run pays
in full and a long one amortises; the target is the whole run's rate. The machine
may be shared: the load average is printed with each run. Targets (issue 13): a trial at most 1.5x a simulate(); --jobs 2 at least 1.8x the
trials per minute of --jobs 1; 1,000 trials in at most 30 s with --jobs 2 on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def resnet_study(sampler: str | None = None):
    """tpu-v1-75w's eight parameters, on ResNet-50 batch 1 alone (with ``sampler`` instead of
    the study's own, where given)."""
    from dse.search.resolve import load_spec
    from dse.search.study_spec import StudySpec

    spec, _, _ = load_spec("tpu-v1-75w")
    doc = {**spec.model_dump(), "name": "bench-resnet50", "workloads": ["resnet50:batch=1"]}
    if sampler:
        doc["sampler"] = sampler
    return StudySpec.model_validate(doc)


def measure(trials: int, jobs: int, sampler: str | None = None) -> dict:
    """One run of the study in this process (the child side of ``run``)."""
    import optuna

    import dse.search.objective as objective
    from dse.search.resolve import resolve_study
    from dse.search.study import run_study
    from dse.search.tables import ALL

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    st = resolve_study(resnet_study(sampler))
    def clocked(fn, into: list):
        """``fn``, adding its CPU seconds and calls to ``into`` ([seconds, calls])."""
        def wrapper(*args, **kwargs):
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                into[0] += time.process_time() - t
                into[1] += 1
        return wrapper

    sim = [0.0, 0]
    objective.simulate = clocked(objective.simulate, sim)
    from dse.search import record, space

    asked = [0.0, 0]  # the sampler's share: Optuna's suggestions (TPE fits its estimators there)
    space.Space.suggest = clocked(space.Space.suggest, asked)
    stored = [0.0, 0]  # the storage's share: a trial's start, its end, and the count before it
    for name in ("start", "finish", "tally"):
        setattr(record.Record, name, clocked(getattr(record.Record, name), stored))
    import resource

    def workers_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    import importlib

    # what a sweep imports on first use (the storage's SQLAlchemy and Alembic, the tables' Parquet
    # writer) is imported before the clock starts, as dse and Optuna are: a process's start-up,
    # paid once per sweep, is bench_startup.py's; this is the cost of the trials
    for name in ("sqlalchemy", "alembic.migration", "optuna.storages._rdb.models", "pyarrow.parquet"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as tmp:
        wall, cpu, wcpu = time.perf_counter(), time.process_time(), workers_cpu()
        df = run_study(st, n_trials=trials, jobs=jobs, out_dir=Path(tmp))
        wall, cpu, wcpu = time.perf_counter() - wall, time.process_time() - cpu, workers_cpu() - wcpu
        steady = steady_rate(Path(tmp) / "study.db", st.name)
    return {"trials": int((df["workload"] == ALL).sum()), "wall_s": wall, "cpu_s": cpu, "workers_cpu_s": wcpu,
            "sim_s": sim[0], "sims": sim[1], "sampler_s": asked[0], "storage_s": stored[0], "steady_per_min": steady}


def steady_rate(db: Path, name: str) -> float:
    """Trials per minute between the 10th and the 90th percentile of the trials' completion
    times (from the storage): the rate once every process runs trials, without the run's fixed
    start (storage, workers' start-up) and end (joining workers, the final tables)."""
    import optuna

    done = sorted(t.datetime_complete for t in optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials
                  if t.datetime_complete is not None)
    lo, hi = len(done) // 10, len(done) * 9 // 10
    span = (done[hi] - done[lo]).total_seconds()
    return (hi - lo) / span * 60 if span > 0 else float("nan")


def run(src: Path, trials: int, jobs: int, sampler: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, __file__, "--child", str(trials), str(jobs), *([sampler] if sampler else [])],
                         env=env, cwd=src,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def checkout(rev: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000, help="trials per run of this checkout")
    ap.add_argument("--baseline", help="git revision to measure in the same run")
    ap.add_argument("--baseline-trials", type=int, default=200, help="trials per run of the baseline")
    ap.add_argument("--jobs", default="1,2", help="comma-separated --jobs values to run (default 1,2)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (the machine is shared: repeat)")
    ap.add_argument("--own-trials", type=int, default=None,
                    help="also run this checkout with --jobs 1 at this many trials (default: the study's own "
                         "n_trials, 200; 0: not)")
    ap.add_argument("--sampler", help="also run this checkout with --jobs 1 and this sampler instead of the study's "
                                      "TPE (e.g. random: what the trial costs besides the sampler's model)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        trials, jobs, *sampler = args.child
        print(json.dumps(measure(int(trials), int(jobs), *sampler)))
        return
    print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'tree':<16}{'jobs':>5}{'trials':>8}{'wall s':>9}{'trials/min':>12}{'ms CPU/trial':>14}"
          f"{'ms/simulate':>13}{'trial/sim':>11}{'ms sampler':>12}{'ms storage':>12}{'ms rest':>9}{'all CPU s':>11}")
    own = args.own_trials
    if own is None:
        own = resnet_study().n_trials or 0
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as tmp:
        trees = [("this checkout", ROOT, args.trials, [int(j) for j in args.jobs.split(",")], None)]
        if own and own != args.trials:  # the study's own budget: the sampler costs less with fewer trials
            trees.append(("this checkout", ROOT, own, [1], None))
        if args.sampler:  # the same trials with another sampler: the rest of a trial's cost
            trees += [(f"{args.sampler} sampler", ROOT, n, [1], args.sampler) for n in sorted({args.trials, own} - {0})]
        if args.baseline:
            trees.insert(0, (args.baseline, checkout(args.baseline, Path(tmp) / "base"), args.baseline_trials,
                             [int(j) for j in args.jobs.split(",")], None))
        for name, src, n, jobs_list, sampler in trees:
            for _ in range(args.repeat):
                rates, steady = {}, {}
                for jobs in jobs_list:
                    r = run(src, n, jobs, sampler)
                    rates[jobs] = r["trials"] / r["wall_s"] * 60
                    per = sim = ratio = asked = storage = rest = ""
                    if jobs == 1 and r["sims"]:
                        per_s, sim_s = r["cpu_s"] / r["trials"], r["sim_s"] / r["sims"]
                        per, sim, ratio = f"{per_s * 1e3:.1f}", f"{sim_s * 1e3:.1f}", f"{per_s / sim_s:.2f}x"
                        asked_s, storage_s = r.get("sampler_s", 0.0) / r["trials"], r.get("storage_s", 0.0) / r["trials"]
                        asked, storage = f"{asked_s * 1e3:.1f}", f"{storage_s * 1e3:.1f}"
                        # everything else: designs built, Optuna's ask/tell, tables, opening the storage
                        rest = f"{(per_s - r['sim_s'] / r['trials'] - asked_s - storage_s) * 1e3:.1f}"
                    every = r["cpu_s"] + r.get("workers_cpu_s", 0.0)  # every process of the run
                    print(f"{name[:15]:<16}{jobs:>5}{r['trials']:>8}{r['wall_s']:>9.1f}{rates[jobs]:>12.0f}"
                          f"{per:>14}{sim:>13}{ratio:>11}{asked:>12}{storage:>12}{rest:>9}{every:>11.1f}"
                          f"   (load {os.getloadavg()[0]:.1f})", flush=True)
                    if jobs == 1 and r["sims"]:
                        # the target leaves 0.5x a simulate() for everything else a trial does
                        print(f"{'':<16}all but simulate() may cost {0.5 * sim_s * 1e3:.1f} ms a trial; it costs "
                              f"{(per_s - sim_s) * 1e3:.1f} ms, of which the sampler {asked_s * 1e3:.1f} ms", flush=True)
                    steady[jobs] = r["steady_per_min"]
                if 1 in rates and 2 in rates:
                    print(f"{'':<16}--jobs 2 / --jobs 1: {rates[2] / rates[1]:.2f}x trials per minute; "
                          f"1,000 trials with --jobs 2: {1000 / rates[2] * 60:.0f} s", flush=True)
                    print(f"{'':<16}(steady state, the middle 80% of the trials: {steady[1]:.0f} and {steady[2]:.0f} "
                          f"trials per minute, {steady[2] / steady[1]:.2f}x)", flush=True)


if __name__ == "__main__":
    main()

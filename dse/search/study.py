"""run_study: open (or resume) the Optuna study in its storage, run trials in this
process and in worker processes, and rebuild the tables from the storage.

The storage is the record: tables are rebuilt from it every few seconds, at the
end and on Ctrl-C, and running the same study again against the same storage
continues towards its trial budget instead of starting over.
"""
from __future__ import annotations

import itertools
import json
import math
import multiprocessing as mp
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
import pandas as pd

from dse.errors import SpecError
from dse.search import storage as _storage
from dse.search.storage import storage_url_for  # noqa: F401  (the CLI's default storage)
from dse.search.record import counted
from dse.search.runner import Runner, work
from dse.search.resolve import Study, resolve_study
from dse.search.samplers import make_sampler, sampler_name
from dse.search.study_spec import StudySpec
from dse.search.tables import study_info, trial_table, write_outputs

FINGERPRINT_ATTR = "dse_fingerprint"
#: Tables are rewritten at most this often while trials run (and always at the end) ...
WRITE_EVERY_S = 5.0
#: ... and never more often than keeps their writing under 1/WRITE_SHARE of the run (each
#: write rebuilds the whole table, so it costs more as the study grows).
WRITE_SHARE = 50


@dataclass(frozen=True)
class Progress:
    """Where a running study stands; handed to the ``progress`` callback after each trial."""

    done: int                 # finished trials, including earlier runs of the study
    target: int | None        # trial budget of the study (None: timeout only)
    done_before: int          # finished before this run started
    best: float | None        # best feasible value of the first objective so far
    best_trial: int | None
    feasible: int
    failed: int
    elapsed_s: float
    timeout_s: float | None


def open_storage(url: str | None):
    """An Optuna storage for ``url`` with heartbeats (see dse/search/storage.py)."""
    return _storage.open_storage(url)


def _open_study(st: Study, storage, sampler) -> optuna.Study:
    study = optuna.create_study(study_name=st.name, storage=storage, sampler=sampler,
                                directions=st.directions, load_if_exists=True)
    if [d.name.lower() for d in study.directions] != st.directions:
        raise SpecError(f"the storage already holds a study '{st.name}' with other objectives; "
                        f"use another --out or --storage")
    stored = study.user_attrs.get(FINGERPRINT_ATTR)
    if stored is None:
        study.set_user_attr(FINGERPRINT_ATTR, st.fingerprint)
        with warnings.catch_warnings():  # experimental in Optuna; names the values in the dashboard
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o.metric for o in st.objectives])
    elif stored != st.fingerprint:
        raise SpecError(f"the storage already holds a study '{st.name}' made from a different study "
                        f"file (architecture, workloads, parameters, objectives or constraints "
                        f"changed); use another --out or --storage")
    return study


def _progress(trials: list[optuna.trial.FrozenTrial], st: Study, target, done_before, t0, timeout) -> Progress:
    done = [t for t in trials if counted(t)]
    first = st.objectives[0]
    best = best_trial = None
    feasible = 0
    for t in done:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        cons = t.user_attrs.get("result", {}).get("constraints", [])
        if any(c > 0 for c in cons if not math.isnan(c)):
            continue
        feasible += 1
        v = t.values[0]
        if best is None or (v > best if first.direction == "maximize" else v < best):
            best, best_trial = v, t.number
    failed = sum(t.state == optuna.trial.TrialState.FAIL for t in done)
    return Progress(len(done), target, done_before, best, best_trial, feasible, failed,
                    time.monotonic() - t0, timeout)


def _runner_progress(runner: Runner, st: Study, target, done_before, t0, timeout) -> Progress:
    """Progress from what a runner knows: the storage's count, and the trials it has seen finish."""
    maximize = st.objectives[0].direction == "maximize"
    best = best_trial = None
    feasible = failed = 0
    for number, (state, is_counted, first, ok) in runner.known.items():
        failed += state == optuna.trial.TrialState.FAIL and is_counted
        if not ok:
            continue
        feasible += 1
        if best is None or (first > best if maximize else first < best):
            best, best_trial = first, number
    return Progress(max(runner.done, len([k for k in runner.known.values() if k[1]])), target, done_before,
                    best, best_trial, feasible, failed, time.monotonic() - t0, timeout)


def _settle(ostudy: optuna.Study, runner: Runner, target: int | None, deadline: float | None) -> None:
    """Bring the budget to exactly ``target`` counted trials after the workers are done: wait
    for trials still running elsewhere, fail (and retry) those whose process died, and run
    what is missing here (retries first)."""
    if target is None or not _storage.has_heartbeat(ostudy._storage):
        return
    for _ in range(2 * target + 10):  # bounded: each pass runs a trial or waits for one
        done, running, waiting, _rows = runner.record.tally()
        if done >= target or (deadline is not None and time.monotonic() >= deadline):
            return
        if running:
            _storage.fail_stale(ostudy)
            time.sleep(1.0)
            continue
        runner.run(n_trials=target - done, deadline=deadline)


def _enqueue(ostudy: optuna.Study, st: Study, designs: list[dict]) -> None:
    """Queue the designs (waiting trials, taken by every process) that no earlier run has
    finished or queued already."""
    from dse.search.objective import Evaluator
    from dse.search.record import Record

    key = Evaluator._key
    have = {key(t.params) or key(t.system_attrs.get("fixed_params", {}))
            for t in ostudy.get_trials(deepcopy=False)
            if counted(t) or t.state == optuna.trial.TrialState.WAITING}
    Record(ostudy._storage, ostudy._study_id).enqueue([d for d in designs if key(d) not in have])


def _start_workers(st: Study, url: str, seed: int | None, target: int | None, timeout: float | None,
                   n: int) -> list[mp.process.BaseProcess]:
    """``n`` worker processes (spawned: a fresh interpreter each, never a fork of this one's threads)."""
    ctx = mp.get_context("spawn")
    procs = []
    for i in range(1, n + 1):
        wseed = None if seed is None else (seed + 7919 * i) % 2**32
        p = ctx.Process(target=work, daemon=True,
                        args=(st, url, wseed, target, timeout, optuna.logging.get_verbosity(), os.getpid()))
        p.start()
        procs.append(p)
    return procs


def _stop_workers(procs: list[mp.process.BaseProcess]) -> None:
    """Wait for the workers (terminate any that outlives its budget by two seconds), then stop
    the resource tracker that spawning started, so that no process outlives the sweep."""
    for p in procs:
        if p.is_alive():
            p.join(2.0)
        if p.is_alive():
            p.terminate()
            p.join()
    if procs:
        from multiprocessing import resource_tracker

        stop = getattr(resource_tracker._resource_tracker, "_stop", None)
        if stop is not None:
            try:
                stop()
            except Exception:  # noqa: BLE001 - already gone
                pass


def run_study(study: str | Path | StudySpec | Study, n_trials: int | None = None, jobs: int | None = None,
              storage: str | None = None, out_dir: str | Path | None = None,
              progress: Callable[[Progress], None] | None = None,
              timeout: float | None = None, verbose: bool = False) -> pd.DataFrame:
    """Run (or resume) a study and return its trial table.

    ``n_trials`` is the study's total budget (trials of earlier runs count);
    ``timeout`` (s) bounds this run. With ``out_dir``, the tables, study.json and
    the best designs are written there and the default storage is
    ``<out_dir>/study.db``; without, the study lives in memory (or ``storage``).
    ``jobs`` > 1 starts worker processes that share the storage. Optuna's per-trial
    log lines are held back while the study runs unless ``verbose`` (failed trials are
    in the table, with their reason).
    """
    if not verbose:
        level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
        try:
            return run_study(study, n_trials, jobs, storage, out_dir, progress, timeout, verbose=True)
        finally:
            optuna.logging.set_verbosity(level)
    st = resolve_study(study)
    spec = st.spec
    jobs = jobs or spec.jobs
    timeout = timeout if timeout is not None else spec.timeout
    target = n_trials or spec.n_trials
    if target is None and sampler_name(st) == "grid":
        target = st.space.grid_size()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _check_out_dir(out, st.name)
    url = storage or storage_url_for(out)
    tmp = None
    if url is None and jobs > 1:  # worker processes need a storage they can share
        tmp = tempfile.TemporaryDirectory(prefix="dse-study-")
        url = storage_url_for(Path(tmp.name))
    lock = _storage.StorageLock(url)
    try:
        return _run(st, n_trials, jobs, out, progress, timeout, target, url, tmp, lock)
    finally:  # (also where the storage refuses the study: another sweep on it would wait for ever)
        lock.close()


def _check_out_dir(out: Path, name: str) -> None:
    """A study's tables (trials.*, study.json, best/) are rewritten each run: a folder holding
    another study's is refused rather than overwritten."""
    try:
        held = json.loads((out / "study.json").read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        return  # no tables yet (or none that name a study): nothing to lose
    if isinstance(held, str) and held != name:
        raise SpecError(f"{out}/ holds the tables of study '{held}'; write '{name}' to another folder (--out)")


def _run(st: Study, n_trials, jobs, out, progress, timeout, target, url, tmp,
         lock: _storage.StorageLock) -> pd.DataFrame:
    """run_study once its storage is chosen and locked."""
    spec = st.spec
    store = open_storage(url)
    probe = _open_study(st, store, None)
    if lock.alone:  # no other live process on this SQLite file: its RUNNING trials are dead
        _storage.fail_running(probe)
    lock.share()
    done_before = sum(counted(t) for t in probe.get_trials(deepcopy=False))
    # a resumed run draws new points (numpy takes seeds below 2^32)
    seed = None if spec.seed is None else (spec.seed + done_before) % 2**32
    ostudy = probe
    info = study_info(st, sampler_name(st), _storage.without_password(url), st.name)
    if spec.screen is not None:  # two-stage: the trials are the designs the screen ranks best
        from dse.search.two_stage import promising

        designs, info["screen"] = promising(st, spec.screen.candidates, spec.screen.simulate, spec.seed)
        target = min(target, len(designs)) if n_trials else len(designs)
        _enqueue(ostudy, st, designs[:target])
    elif sampler_name(st) == "grid":  # every point once, in an order of the seed's, whichever process runs it
        import random

        points = [dict(zip(st.space.grid(), values)) for values in itertools.product(*st.space.grid().values())]
        random.Random(spec.seed).shuffle(points)
        target = min(target, len(points))
        _enqueue(ostudy, st, points[:target])
    t0 = time.monotonic()
    deadline = None if timeout is None else t0 + timeout
    last_write = [t0, 0.0]  # when, and how long the last write took

    def write(final: bool = True) -> pd.DataFrame:
        df = trial_table(ostudy.get_trials(deepcopy=False), st)
        if out is not None:  # the best designs' per-op detail (a simulation each) only at the end
            write_outputs(out, df, st, info, detail=final)
        return df

    def after_trial(runner: Runner) -> None:
        if progress is not None:
            progress(_runner_progress(runner, st, target, done_before, t0, timeout))
        since = time.monotonic() - last_write[0]
        if out is not None and since > max(WRITE_EVERY_S, WRITE_SHARE * last_write[1]):
            start = time.monotonic()
            write(final=False)
            last_write[:] = [time.monotonic(), time.monotonic() - start]

    procs: list[mp.process.BaseProcess] = []
    try:
        remaining = None if target is None else target - done_before
        sampler = make_sampler(st, seed, target)  # (what a worker would fail on too: once, here)
        if jobs > 1 and (remaining is None or remaining > 0):
            # before this process's runner: a worker's start-up (a new interpreter, ~0.8 s of
            # imports) overlaps it
            procs = _start_workers(st, url, seed, target, timeout, jobs - 1)
        runner = Runner(st, ostudy, sampler, target, after_trial)
        if progress is not None:
            progress(_progress(ostudy.get_trials(deepcopy=False), st, target, done_before, t0, timeout))
        if remaining is None or remaining > 0:
            runner.run(deadline=deadline)
            for p in procs:
                while p.is_alive():
                    p.join(0.5)
                    if progress is not None:
                        runner.pull()
                        progress(_runner_progress(runner, st, target, done_before, t0, timeout))
            _settle(ostudy, runner, target, deadline)
    finally:
        _stop_workers(procs)
        df = write()  # from the storage: every worker's and every machine's trials
        lock.close()
        if tmp is not None:
            tmp.cleanup()
    return df

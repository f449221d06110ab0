"""Sweeps survive dead workers and leave none behind (issue 14, item 2).

A worker killed with SIGKILL in the middle of a trial: its trial is failed (its heartbeat
went silent) and retried once with the same parameters, the study still ends with exactly
N completed trials and nothing RUNNING, and the tables equal the storage. The same on a
real PostgreSQL server. A sweep whose parent is killed takes its workers with it, and one
that ends normally leaves no process of its own behind (workers, multiprocessing's tracker).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from dse.search.tables import ALL

N = 12
STUDY = {
    "name": "faults",
    "architecture": "tpu-v1-like",
    # a few tenths of a second per trial: long enough to be killed in the middle of one (the
    # engine's cost grows with ops, not with their size: 4 x 1,026 LSTM ops)
    "workloads": [{"spec": f"lstm:seq=256,batch={b}", "name": f"r{b}"} for b in (1, 2, 3, 4)],
    "parameters": {"compute.mxu.rows": {"low": 64, "high": 256, "step": 64},
                   "compute.mxu.clock": {"low": "300 MHz", "high": "1 GHz"}},
    "derived": {"compute.mxu.cols": "rows"},
    "objectives": ["maximize tops_per_w"],
    "sampler": "random",
    "seed": 3,
    "n_trials": N,
}


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _workers(pid: int) -> list[int]:
    """The sweep's worker processes (multiprocessing's spawned children)."""
    out = []
    for child in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _sweep(study: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dse", "sweep", str(study), "--jobs", "2", "-o", str(out),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


_ENGINES: dict = {}


def _count(url: str, state: str) -> int:
    """Trials in ``state`` in the storage (read straight from Optuna's table, cheaply)."""
    import sqlalchemy

    engine = _ENGINES.setdefault(url, sqlalchemy.create_engine(url))
    try:
        with engine.connect() as conn:
            return conn.execute(sqlalchemy.text("SELECT count(*) FROM trials WHERE state = :s"), {"s": state}).scalar()
    except sqlalchemy.exc.SQLAlchemyError:  # not created yet
        return 0


def _running(url: str) -> int:
    return _count(url, "RUNNING")


def _kill_worker_mid_trial(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        workers = _workers(proc.pid)
        # two trials running: the parent's and the worker's, so the worker is mid-trial
        if workers and _running(url) >= 2:
            os.kill(workers[0], signal.SIGKILL)
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pytest.fail("never saw two trials running at once")


def _check(url: str, out: Path) -> None:
    study = optuna.load_study(study_name="faults", storage=url)
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    S = optuna.trial.TrialState
    assert states.count(S.COMPLETE) == N, states
    assert S.RUNNING not in states and S.WAITING not in states, states
    failed = [t for t in trials if t.state == S.FAIL]
    assert len(failed) == 1, states
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retries) == 1 and retries[0].state == S.COMPLETE
    # the same design run again: every value the killed trial had drawn is kept
    assert failed[0].params.items() <= retries[0].params.items()
    table = pd.read_parquet(out / "trials.parquet")
    agg = table[table["workload"] == ALL]
    assert sorted(agg["trial"]) == sorted(t.number for t in trials)
    assert dict(zip(agg["trial"], agg["state"])) == {t.number: t.state.name for t in trials}


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    p = tmp_path / "faults.yaml"
    p.write_text(yaml.safe_dump(STUDY, sort_keys=False))
    return p


def test_a_worker_killed_mid_trial_on_sqlite_is_failed_retried_and_the_budget_met(study_file, tmp_path):
    out = tmp_path / "out"
    url = f"sqlite:///{(out / 'study.db').resolve()}"
    proc = _sweep(study_file, out)
    _kill_worker_mid_trial(proc, url)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    _check(url, out)


def test_a_rerun_on_sqlite_fails_the_trials_a_killed_sweep_left_running(study_file, tmp_path):
    out = tmp_path / "out"
    url = f"sqlite:///{(out / 'study.db').resolve()}"
    proc = subprocess.Popen([sys.executable, "-m", "dse", "sweep", str(study_file), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while _running(url) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no handler runs, the trial stays RUNNING in the file
    proc.communicate()
    assert _running(url) == 1
    t0 = time.monotonic()
    rerun = subprocess.run([sys.executable, "-m", "dse", "sweep", str(study_file), "-o", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    _check(url, out)
    # found dead by the lock at once, not after the heartbeat grace period
    assert time.monotonic() - t0 < 240


def test_killing_the_parent_of_jobs_2_leaves_no_worker_alive(study_file, tmp_path):
    proc = _sweep(study_file, tmp_path / "out", "--n-trials", "400")
    deadline = time.monotonic() + 240
    workers: list[int] = []
    while not workers and time.monotonic() < deadline:
        workers = _workers(proc.pid)
        time.sleep(0.1)
    assert workers
    time.sleep(1.0)  # the worker is running trials
    proc.kill()
    proc.communicate()
    time.sleep(3.0)
    assert not [w for w in workers if _alive(w)]


#: Runs a command as a child subreaper (Linux prctl PR_SET_CHILD_SUBREAPER): every process the
#: command leaves behind when it exits, even one that ends a moment later, is adopted by this
#: one, which counts them (zombies included) and prints the command's exit status and the count.
_ADOPT = r"""
import ctypes, os, signal, subprocess, sys, time
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
with open(sys.argv[1], "w") as log:
    code = subprocess.Popen(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).wait()
time.sleep(1.0)
left = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        continue
    if int(stat[1]) == os.getpid() and stat[0] != "Z":
        left.append(cmd)
        os.kill(int(pid), signal.SIGKILL)
adopted = 0
while True:
    try:
        pid, _ = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    adopted += 1
print(code, adopted, left)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child subreaper is Linux's")
def test_no_process_outlives_a_sweep_that_ends(study_file, tmp_path):
    out = tmp_path / "out"
    log = tmp_path / "log"
    run = subprocess.run([sys.executable, "-c", _ADOPT, str(log), sys.executable, "-m", "dse", "sweep",
                          str(study_file), "--jobs", "3", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    code, adopted, left = run.stdout.split(" ", 2)
    assert code == "0", log.read_text()
    # nothing the sweep started (workers, multiprocessing's resource tracker) outlived it
    assert (int(adopted), left.strip()) == (0, "[]")
    trials = optuna.load_study(study_name="faults", storage=f"sqlite:///{out / 'study.db'}").trials
    assert [t.state for t in trials].count(optuna.trial.TrialState.COMPLETE) == N


def test_a_worker_killed_mid_trial_on_postgres_is_failed_retried_and_the_budget_met(study_file, tmp_path,
                                                                                     pg_url):
    out = tmp_path / "out"
    proc = _sweep(study_file, out, "--storage", pg_url)
    _kill_worker_mid_trial(proc, pg_url)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    _check(pg_url, out)


def test_sigterm_stops_a_sweep_as_ctrl_c_does_with_its_tables_written(study_file, tmp_path):
    """SIGTERM (timeout, Slurm, docker stop) mid-sweep: exit 143 with one line, no worker left,
    and the tables list every trial the storage holds, in the state it holds."""
    out = tmp_path / "out"
    url = f"sqlite:///{out / 'study.db'}"
    proc = _sweep(study_file, out, "--n-trials", "1000")
    deadline = time.monotonic() + 240
    while _count(url, "COMPLETE") < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    workers = _workers(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "terminated: completed trials are kept" in stderr and "Traceback" not in stderr
    assert not any(_alive(w) for w in workers)
    trials = optuna.load_study(study_name="faults", storage=url).get_trials(deepcopy=False)
    table = pd.read_parquet(out / "trials.parquet")
    agg = table[table["workload"] == ALL]
    assert dict(zip(agg["trial"], agg["state"])) == {t.number: t.state.name for t in trials}
    assert (agg["state"] == "COMPLETE").sum() >= 2

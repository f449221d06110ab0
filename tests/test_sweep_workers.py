"""A sweep's worker processes start and end without the interpreter's dead time (issue 13):
a worker opens the storage its parent has just checked without reading Optuna's schema
versions (no Alembic import), and ends with status 0 once its trials are recorded."""
from __future__ import annotations

import subprocess
import sys

import optuna

import search_fixtures as fx
from dse.search import study as study_mod
from dse.search.storage import open_storage
from dse.search.tables import ALL

_WORKER_OPEN = """
import sys
import optuna
from dse.search.storage import open_storage
from optuna.storages._rdb import storage as rdb
storage = open_storage(sys.argv[1], checked=True)
print("alembic" in sys.modules)
study = optuna.load_study(study_name="w", storage=storage)
print([t.value for t in study.trials])
print(rdb._VersionManager.__name__)
# what the version manager is for still works, reading the versions when asked
print(storage.get_current_version() == storage.get_head_version())
"""


def test_a_worker_opens_a_checked_storage_without_reading_its_schema_versions(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="w", storage=open_storage(url))
    study.add_trial(optuna.trial.create_trial(value=2.5))
    run = subprocess.run([sys.executable, "-c", _WORKER_OPEN, url], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:4] == ["False", "[2.5]", "_VersionManager", "True"]


def test_workers_end_with_status_0_after_their_trials(tmp_path, monkeypatch):
    started = []
    real = study_mod._start_workers

    def spy(*args, **kwargs):
        procs = real(*args, **kwargs)
        started.extend(procs)
        return procs

    monkeypatch.setattr(study_mod, "_start_workers", spy)
    path = fx.write(tmp_path, fx.study(seed=2, n_trials=24))
    df = study_mod.run_study(path, jobs=3, out_dir=tmp_path / "out")
    assert len(started) == 2
    assert [p.exitcode for p in started] == [0, 0]
    trials = df[df["workload"] == ALL]
    assert len(trials) == 24 and (trials["state"] == "COMPLETE").all()
    # every trial a worker ran is in the storage, recorded as complete
    stored = optuna.load_study(study_name=fx.study(seed=2)["name"],
                               storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}").trials
    assert sorted(t.number for t in stored if t.state == optuna.trial.TrialState.COMPLETE) == list(range(24))


def test_a_sampler_the_parent_cannot_make_starts_no_worker(tmp_path, monkeypatch):
    """The parent makes its sampler before it starts workers: a study whose sampler cannot be
    made (GP without PyTorch) fails once, with its one line, and no worker repeats it."""
    import importlib.util

    import pytest

    from dse.errors import SpecError

    real_find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find(name, *a))
    started = []
    monkeypatch.setattr(study_mod, "_start_workers", lambda *a, **k: started.append(a) or [])
    path = fx.write(tmp_path, {**fx.study(seed=2, n_trials=6), "sampler": "gp"})
    with pytest.raises(SpecError, match="PyTorch"):
        study_mod.run_study(path, jobs=3, out_dir=tmp_path / "out")
    assert started == []

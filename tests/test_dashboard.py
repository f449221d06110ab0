"""A study's storage opens in optuna-dashboard (served here through its WSGI app, no network)."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

optuna_dashboard = pytest.importorskip("optuna_dashboard")


def _get(app, path: str):
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "localhost",
           "SERVER_PORT": "80", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
           "SERVER_PROTOCOL": "HTTP/1.1"}
    status: list[str] = []
    body = b"".join(app(env, lambda s, h, exc=None: status.append(s)))
    return status[0], json.loads(body)


def test_sweep_storage_opens_in_optuna_dashboard(tmp_path):
    import optuna

    out = tmp_path / "qs"
    proc = subprocess.run([sys.executable, "-m", "dse", "sweep", "quickstart", "--n-trials", "6", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    app = optuna_dashboard.wsgi(optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}"))
    status, studies = _get(app, "/api/studies")
    assert status.startswith("200")
    summary = next(s for s in studies["study_summaries"] if s["study_name"] == "quickstart")
    status, study = _get(app, f"/api/studies/{summary['study_id']}")
    assert status.startswith("200") and len(study["trials"]) == 6


def test_dashboard_reports_the_constraints_of_every_trial(tmp_path):
    """Constraint values go where Optuna keeps them, so optuna-dashboard tells feasible trials
    from infeasible ones: each completed trial lists the table's constraint values."""
    import optuna
    import pandas as pd

    out = tmp_path / "mo"
    proc = subprocess.run([sys.executable, "-m", "dse", "sweep", "multiobjective", "--n-trials", "8", "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    app = optuna_dashboard.wsgi(optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}"))
    _, studies = _get(app, "/api/studies")
    summary = next(s for s in studies["study_summaries"] if s["study_name"] == "multiobjective")
    _, study = _get(app, f"/api/studies/{summary['study_id']}")
    table = pd.read_parquet(out / "trials.parquet")
    agg = table[table["workload"] == "__all__"].set_index("trial")
    cons = [c for c in table.columns if c.startswith("constraint: ")]
    assert cons == ["constraint: avg_power_w <= 75 W", "constraint: fits_memory"]
    complete = [t for t in study["trials"] if t["state"] == "Complete"]
    assert len(complete) == (agg["state"] == "COMPLETE").sum() > 0
    for t in complete:
        row = agg.loc[t["number"]]
        assert t["constraints"] == pytest.approx([row[c] for c in cons])
        # feasible in the dashboard (every value <= 0) exactly when the table says so
        assert all(v <= 0 for v in t["constraints"]) == bool(row["feasible"])

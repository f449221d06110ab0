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

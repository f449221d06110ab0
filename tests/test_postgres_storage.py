"""Many machines, one study: `dse sweep` processes sharing a real PostgreSQL server.

Starts a throwaway PostgreSQL cluster on 127.0.0.1 (Debian's postgresql package, which
.ci/run installs), runs two sweeps of the same study against it at once, as two
machines would, and checks that they share one budget and one set of trials.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("psycopg2")

from pg_server import _free_port, _pg_bin  # noqa: E402 (one home for the server helpers)


@pytest.fixture
def postgres_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries not installed (.ci/run installs Debian's postgresql)")
    # a folder the postgres user can reach (pytest's tmp folders are private to root)
    tmp_path = Path(tempfile.mkdtemp(prefix="dse-pg-"))
    tmp_path.chmod(0o777)
    data = tmp_path / "pgdata"
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
    data.mkdir()
    if as_user:
        shutil.chown(data, "postgres")
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "dse"], check=True,
                   capture_output=True)
    port = _free_port()
    opts = f"-h 127.0.0.1 -p {port} -k {tmp_path}"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(tmp_path / "pg.log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        import psycopg2

        for _ in range(50):
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="dse", dbname="postgres")
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE studies")
        conn.close()
        yield f"postgresql+psycopg2://dse@127.0.0.1:{port}/studies"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_two_sweeps_on_one_postgres_share_the_budget_and_the_trials(postgres_url, tmp_path):
    n = 12
    cmd = [sys.executable, "-m", "dse", "sweep", "quickstart", "--n-trials", str(n), "--storage", postgres_url]
    procs = [subprocess.Popen([*cmd, "--out", str(tmp_path / f"machine{i}")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    import optuna

    study = optuna.load_study(study_name="quickstart", storage=postgres_url)
    done = [t for t in study.trials if t.state.is_finished()]
    # one budget for both machines; each may start one trial while the other finishes the last
    assert n <= len(done) <= n + 1
    for i in range(2):  # each machine's tables are rebuilt from the shared storage
        table = pd.read_parquet(tmp_path / f"machine{i}" / "trials.parquet")
        assert table["trial"].nunique() >= n

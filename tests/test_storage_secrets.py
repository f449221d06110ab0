"""Storage passwords never appear in any output (issue 14, item 3): a sweep on a
password-protected PostgreSQL server, its report, and every way of failing to connect."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dse.search.storage import masked, without_password
from pg_server import postgres

SECRET = "Sesame-4711-xyzzy"


def _dse(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def _every_file(folder: Path) -> str:
    text = []
    for p in folder.rglob("*"):
        if p.is_file() and p.suffix != ".db":  # the SQLite file is not written with a PostgreSQL storage
            text.append(p.read_bytes().decode("latin-1"))
    return "\n".join(text)


def test_urls_are_masked_for_display_and_stored_without_the_password():
    url = f"postgresql+psycopg2://dse:{SECRET}@db.example:5432/studies"
    assert SECRET not in masked(url) and "***" in masked(url) and "db.example:5432/studies" in masked(url)
    assert without_password(url) == "postgresql+psycopg2://dse@db.example:5432/studies"


def test_no_output_of_a_sweep_on_a_password_protected_postgres_shows_the_password(tmp_path):
    with postgres(password=SECRET) as (host, port):
        url = f"postgresql+psycopg2://dse:{SECRET}@{host}:{port}/studies"
        out = tmp_path / "out"
        sweep = _dse("sweep", "quickstart", "--n-trials", "4", "--storage", url, "-o", str(out))
        assert sweep.returncode == 0, sweep.stderr
        # the report reads the storage named in study.json; libpq finds the password in PGPASSWORD
        report = _dse("report", str(out), "-o", str(tmp_path / "report" / "report.html"),
                      env={"PGPASSWORD": SECRET})
        assert report.returncode == 0, report.stderr
        outputs = [sweep.stdout, sweep.stderr, report.stdout, report.stderr, _every_file(out),
                   _every_file(tmp_path / "report")]
        for text in outputs:
            assert SECRET not in text
        assert (out / "study.json").read_text().count(f"dse@{host}:{port}/studies") == 1
        # a resume with the URL as study.json keeps it: the password comes from the environment
        bare = f"postgresql+psycopg2://dse@{host}:{port}/studies"
        again = _dse("sweep", "quickstart", "--n-trials", "6", "--storage", bare, "-o", str(out),
                     env={"PGPASSWORD": SECRET})
        assert again.returncode == 0, again.stderr
        assert SECRET not in again.stdout + again.stderr + _every_file(out)

        # every way of failing to connect: one line, exit 2, no password
        bad = {
            "wrong password": url.replace(SECRET, SECRET + "-wrong"),
            "refused port": url.replace(f":{port}/", ":1/"),
            "unknown host": url.replace(f"@{host}:", "@no-such-host.invalid:"),
            "unknown database": url.replace("/studies", "/nosuchdb"),
        }
        for case, wrong in bad.items():
            proc = _dse("sweep", "quickstart", "--n-trials", "2", "--storage", wrong, "-o", str(tmp_path / case))
            assert proc.returncode == 2, (case, proc.stderr)
            text = proc.stdout + proc.stderr + _every_file(tmp_path / case)
            assert SECRET not in text, case
            assert "Traceback" not in proc.stderr and "***" in proc.stderr, (case, proc.stderr)

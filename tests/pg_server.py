"""A throwaway PostgreSQL server on 127.0.0.1 for the storage tests (Debian's postgresql
package, which .ci/run installs), optionally with password authentication."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres(password: str | None = None) -> Iterator[tuple[str, int]]:
    """(host, port) of a fresh server with database 'studies' and user 'dse' (with
    ``password``: scram-sha-256 authentication for every TCP connection)."""
    pytest.importorskip("psycopg2")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries not installed (.ci/run installs Debian's postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="dse-pg-"))
    tmp.chmod(0o777)  # the postgres user must reach it
    data = tmp / "pgdata"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data, "postgres")
    args = [*as_user, initdb, "-D", str(data), "-U", "dse"]
    if password is None:
        args += ["-A", "trust"]
    else:
        pwfile = tmp / "pw"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o644)
        args += ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
    subprocess.run(args, check=True, capture_output=True)
    port = _free_port()
    opts = f"-h 127.0.0.1 -p {port} -k {tmp}"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(tmp / "pg.log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        import psycopg2

        conn = None
        for _ in range(50):
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=port, user="dse", dbname="postgres",
                                        password=password)
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        assert conn is not None
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE studies")
        conn.close()
        yield "127.0.0.1", port
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)

"""What a new user types on the first day: bare `dse`, --version, help screens, the
messages after writing files, "did you mean", and tables that fit an 80-column pipe."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dse(*args, columns: int | None = None, cwd=None):
    env = dict(os.environ)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.mark.parametrize("args", [(), ("list",)])
def test_bare_command_prints_help_and_exits_0(args):
    proc = dse(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout and "Commands:" in proc.stdout
    assert "error" not in proc.stdout + proc.stderr


def test_version_is_the_packaged_one():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    proc = dse("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"dse {version}"


COMMANDS = [(), ("run",), ("workload",), ("check",), ("sweep",), ("report",), ("compare",), ("replay",),
            ("list",), ("list", "studies"), ("list", "memories")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "dse")
def test_help_screens_are_clean(command):
    proc = dse(*command, "--help", columns=100)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "<bool>" not in text and "╭" not in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_help_keeps_brackets_and_names_every_compare_choice():
    assert "<R|W> [size]" in " ".join(dse("replay", "--help", columns=200).stdout.split())
    assert "reram-imc" in dse("compare", "--help").stdout


def test_list_studies_names_every_bundled_study():
    proc = dse("list", "studies", columns=80)
    assert proc.returncode == 0, proc.stderr
    for f in (ROOT / "studies").glob("*.yaml"):
        assert re.search(rf"\b{re.escape(f.stem)}\b", proc.stdout), f.stem


def test_list_memories_fits_80_columns_one_line_per_technology():
    proc = dse("list", "memories", columns=80)   # piped: not a terminal
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    from dse.tech.library import memory_technologies

    techs = list(memory_technologies())
    for t in techs:  # a table row and a source line each, never wrapped onto more lines
        rows = [line for line in lines if re.match(rf"^\s*{re.escape(t)}\s", line)]
        assert len(rows) == 1, (t, rows)
        assert sum(line.strip().startswith(f"{t}:") for line in lines) == 1
    assert len(lines) <= 2 * len(techs) + 8


def test_run_out_says_what_it_wrote_and_how_to_read_it(tmp_path):
    out = tmp_path / "ops.parquet"
    proc = dse("run", "tpu-v1-like", "-w", "mlp", "--per-op", "--out", str(out), "-f", "csv")
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    n = len(pd.read_parquet(out))
    assert f"wrote {n} ops" in proc.stderr and str(out) in proc.stderr and "read_parquet" in proc.stderr
    assert "wrote" not in proc.stdout  # the CSV on stdout stays clean


def test_sweep_says_what_it_wrote_and_what_next(tmp_path):
    out = tmp_path / "qs"
    first = dse("sweep", "quickstart", "--n-trials", "2", "--out", str(out), columns=200)
    assert first.returncode == 0, first.stderr
    text = " ".join(first.stdout.split())
    assert f"wrote {out}/trials.parquet" in text and f"dse report {out}" in text
    again = dse("sweep", "quickstart", "--n-trials", "2", "--out", str(out), columns=200)
    assert again.returncode == 0, again.stderr
    assert "no new trials" in again.stdout and "--n-trials 4" in " ".join(again.stdout.split())


@pytest.mark.parametrize("spec, suggestion", [("resnet-50", "resnet50"), ("bert_base", "bert-base"),
                                              ("gpt:layer=2", "layers")])
def test_workload_typos_get_a_suggestion(spec, suggestion):
    proc = dse("run", "tpu-v1-like", "-w", spec)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"did you mean '{suggestion}'" in proc.stderr


def test_override_typos_name_the_override_not_a_bundled_file():
    from dse.errors import SpecError
    from dse.spec.loader import load_architecture

    with pytest.raises(SpecError) as exc:
        load_architecture("tpu-v1-like", overrides={"compute.mxu.rowz": 128})
    text = str(exc.value)
    assert "compute.mxu.rowz" in text and "did you mean compute.mxu.rows" in text and ".yaml" not in text
    with pytest.raises(SpecError) as exc:
        load_architecture("tpu-v1-like", overrides={"compute.mxu.clock": "3 GB"})
    assert str(exc.value).startswith("overrides: compute.mxu.clock:") and ".yaml" not in str(exc.value)
    with pytest.raises(SpecError) as exc:
        load_architecture("tpu-v1-like", overrides={"compute.mxu.kind": "systolic_array"})
    assert "did you mean 'systolic'" in str(exc.value) and "Input tag" not in str(exc.value)

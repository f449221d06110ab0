"""The layering holds (import-linter, contracts in pyproject.toml), and the check has teeth."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT, "--no-cache"], cwd=root, capture_output=True, text=True, env=env)


pytestmark = pytest.mark.skipif(not Path(LINT).exists(), reason="import-linter is not installed")


def test_the_import_contracts_are_kept():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module, planted, contract", [
    ("report/model.py", "import dse.sim.engine", "a report never simulates"),
    ("tech/library.py", "from dse.sim import cost", "layers"),
    ("sim/allocate.py", "from dse.sim import engine", "no import cycles"),
    ("spec/variants.py", "from dse.console import fail", "only the command modules print"),
])
def test_a_planted_violation_breaks_its_contract(tmp_path, module, planted, contract):
    shutil.copytree(ROOT / "dse", tmp_path / "dse", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "dse" / module
    # planted inside a function, where a hidden cycle would sit
    target.write_text(target.read_text() + f"\n\ndef _planted():\n    {planted}\n")
    proc = lint(tmp_path)
    assert proc.returncode != 0
    broken = proc.stdout.split("Broken contracts")[-1]
    assert contract in broken, proc.stdout

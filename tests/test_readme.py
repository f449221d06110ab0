"""Every `dse` command the README shows runs and exits 0 (sweeps capped at a few trials)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines: list[str] = []
    for block in blocks:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("dse ") and "my_" not in line and "my." not in line:
                lines.append(line)
    return lines


COMMANDS = readme_commands()


def test_the_readme_shows_commands():
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, tmp_path):
    args = shlex.split(command)[1:]
    # outputs go to a temporary folder, sweeps run a few trials only
    args = [str(tmp_path / Path(a).name) if i and args[i - 1] in ("--out", "-o") else a
            for i, a in enumerate(args)]
    if args[0] == "sweep":
        args += ["--n-trials", "4"]
    if args[0] == "report":
        sweep = subprocess.run([sys.executable, "-m", "dse", "sweep", "quickstart", "--n-trials", "4",
                                "--out", str(tmp_path / Path(args[1]).name)], cwd=ROOT,
                               capture_output=True, text=True)
        assert sweep.returncode == 0, sweep.stderr
        args[1] = str(tmp_path / Path(args[1]).name)
    proc = subprocess.run([sys.executable, "-m", "dse", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stderr}"

"""The README as a new user meets it: `pip install .` (not editable) into a fresh virtual
environment, then every `dse` command the README shows, exactly as written and in the
order written, from a directory outside the clone (sweeps capped at a few trials), and
its Python example."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Sweeps run this many trials here (the README's budgets are for real use).
TRIALS = "3"


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


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


COMMANDS = readme_commands()


def _setuptools_new_enough() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(bin folder of a fresh venv holding a non-editable install of this clone, a work folder
    outside the clone). The venv sees the system's packages, so only dse itself is built."""
    base = tmp_path_factory.mktemp("fresh-user")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    isolation = ["--no-build-isolation"] if _setuptools_new_enough() else []
    proc = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--no-deps", *isolation,
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    work = base / "work"
    work.mkdir()
    where = subprocess.run([str(bin_dir / "python"), "-c", "import dse; print(dse.__file__)"], cwd=work,
                           capture_output=True, text=True, env=_env(bin_dir))
    # the venv's copy, not the clone (nor an editable install pointing at one)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr
    return bin_dir, work


def _env(bin_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    return env


def test_the_readme_shows_commands():
    assert len(COMMANDS) >= 12
    assert any(c.startswith("dse sweep quickstart") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs_from_outside_the_clone(command, installed):
    bin_dir, work = installed
    args = shlex.split(command)
    if args[1] == "sweep":
        args += ["--n-trials", TRIALS]   # the last --n-trials wins
    proc = subprocess.run(args, cwd=work, env=_env(bin_dir), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def test_readme_python_runs_from_outside_the_clone(installed):
    bin_dir, work = installed
    code = "\n".join(python_blocks())
    # the prose's one-liner, on the bundled study by name (a short budget)
    code += "\ndf = dse.run_study('tpu-v1-75w', n_trials=2)\nassert len(df[df['workload'] == '__all__']) == 2\n"
    proc = subprocess.run([str(bin_dir / "python"), "-c", code], cwd=work, env=_env(bin_dir),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # Optuna's per-trial INFO lines stay quiet unless asked for
    assert "Trial 0 finished" not in proc.stderr


def test_every_bundled_study_is_listed_and_runs_by_its_listed_name(installed):
    bin_dir, work = installed
    listed = subprocess.run(["dse", "list", "studies"], cwd=work, env=_env(bin_dir), capture_output=True,
                            text=True)
    assert listed.returncode == 0, listed.stderr
    names = sorted(p.stem for p in (ROOT / "studies").glob("*.yaml"))
    assert names, "no bundled studies"
    for name in names:
        assert re.search(rf"^\S*\s*{re.escape(name)}\s", listed.stdout, flags=re.M), (name, listed.stdout)
        proc = subprocess.run(["dse", "sweep", name, "--n-trials", "2", "--out", f"runs/{name}"], cwd=work,
                              env=_env(bin_dir), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        assert (work / "runs" / name / "trials.parquet").is_file()


def test_every_python_package_is_in_the_wheel():
    """A folder of modules missing from pyproject's package list works in the clone and breaks
    after `pip install .` (ModuleNotFoundError): list them all."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "dse").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert folders - listed == set()

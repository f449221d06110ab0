"""Start-up: `dse --help` and `dse run` import only what they use, and the on-disk cache
of Pint's readings gives Pint's own numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dse import units

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pint", "optuna", "matplotlib", "onnx", "sqlalchemy", "seaborn", "scipy")

_PROBE = """
import sys
from dse.cli import main
sys.argv = ["dse", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in sys.modules if m in {heavy!r})
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
"""


def _imports(args: list[str], cache_dir: Path) -> tuple[set[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DSE_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args], env=env,
                          capture_output=True, text=True, timeout=120)
    line = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY=")][-1]
    return {m for m in line[len("HEAVY="):].split(",") if m}, proc.stdout


def test_help_imports_no_heavy_module(tmp_path):
    heavy, out = _imports(["--help"], tmp_path)
    assert "sweep" in out and heavy == set()


def test_run_reads_units_through_pint_once_then_from_the_cache(tmp_path):
    cold, out_cold = _imports(["run", "tpu-v1-like", "-w", "mlp", "--format", "json"], tmp_path)
    assert "pint" in cold                      # first run: Pint reads the unit strings
    warm, out_warm = _imports(["run", "tpu-v1-like", "-w", "mlp", "--format", "json"], tmp_path)
    assert warm == set()                       # --format json writes the summary row: no pandas, Pint, Optuna, ...
    assert json.loads(out_warm) == json.loads(out_cold)
    table, _ = _imports(["run", "tpu-v1-like", "-w", "mlp"], tmp_path)
    assert table == set()                      # the default table needs neither pandas nor Pint


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(units, "_cache", units._Cache())
    return tmp_path / "quantities.json"


@pytest.mark.parametrize("text, dimension, si", [
    ("819 GB/s", "bandwidth", 819e9),                 # decimal giga
    ("24 MiB", "bytes", 24 * 2**20),                  # binary mebi
    ("3.9 pJ/bit", "energy_per_bit", 3.9e-12),
    ("700 MHz", "frequency", 700e6),
    ("92 TOPS", "compute_rate", 92e12),
    ("331 mm^2", "area", 331.0),                      # areas stay in mm^2
    ("100 ns", "time", 100e-9),
])
def test_cached_readings_equal_hand_values(fresh_cache, text, dimension, si):
    first = units.to_si(text, dimension)
    assert first == pytest.approx(si, rel=1e-12)
    stored = json.loads(fresh_cache.read_text())["entries"][text]
    units._cache = units._Cache()                     # a new process: read back from the file
    assert units.to_si(text, dimension) == first and stored[1] == first


def test_cache_does_not_hide_a_wrong_dimension(fresh_cache):
    assert units.to_si("3 GHz", "frequency") == 3e9
    with pytest.raises(ValueError, match="a frequency, expected a bandwidth"):
        units.to_si("3 GHz", "bandwidth")


def test_a_corrupt_or_foreign_cache_file_is_ignored(fresh_cache):
    fresh_cache.write_text("{not json")
    assert units.to_si("2 KiB", "bytes") == 2048
    data = json.loads(fresh_cache.read_text())
    data["key"] = "another pint"
    data["entries"]["2 KiB"] = ["bytes", 1.0]       # a stale answer under another key
    fresh_cache.write_text(json.dumps(data))
    units._cache = units._Cache()
    assert units.to_si("2 KiB", "bytes") == 2048


def test_run_of_a_bundled_design_on_resnet50_imports_no_numpy(tmp_path):
    # numpy's import alone is ~0.1 s of CPU; the tiling search of a ResNet-50 runs in Python.
    # (The first run reads unit strings through Pint, which imports numpy; later runs do not.)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DSE_CACHE_DIR": str(tmp_path)}
    probe = _PROBE.format(heavy=("numpy",))
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", probe, "run", "h100-class", "-w", "resnet50"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert "latency_s" in proc.stdout and "HEAVY=\n" in proc.stderr

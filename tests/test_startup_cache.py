"""The start-up caches (dse/spec/cache.py: validated architectures; dse/diskcache.py: parsed
technology tables) never change an answer: an edited file is read again, a warning is shown on
every run, and a cache folder that cannot be written, or holds garbage, is done without."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from dse import diskcache
from dse.errors import SpecWarning
from dse.spec import cache
from dse.spec.loader import bundled_dir, load_architecture

ROOT = Path(__file__).resolve().parents[1]
TPU = bundled_dir("architectures") / "tpu-v1-like.yaml"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("DSE_CACHE_DIR", str(folder))
    return folder


def _copy(tmp_path: Path, text: str | None = None, name: str = "chip.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text if text is not None else TPU.read_text())
    return path


def test_a_clean_load_is_kept_and_read_back_equal(cache_dir, tmp_path):
    path = _copy(tmp_path)
    assert cache.cached_architecture(path) is None               # never loaded
    first = cache.load_architecture_cached(path)
    assert len(list((cache_dir / "architectures").glob("*.pickle"))) == 1
    again = cache.cached_architecture(path)
    assert again is not None and again == first == load_architecture(path)
    assert cache.cached_architecture(_copy(tmp_path, name="same-bytes.yaml")) == first  # keyed on content


def test_an_edited_file_is_validated_again(cache_dir, tmp_path):
    path = _copy(tmp_path)
    cache.load_architecture_cached(path)
    # the file says 700 MHz; the edit says 940 MHz (the clock of a TPU v2 core)
    path.write_text(TPU.read_text().replace("clock: 700 MHz", "clock: 940 MHz"))
    assert cache.cached_architecture(path) is None
    edited = cache.load_architecture_cached(path)
    assert {c.clock for c in edited.compute} == {940e6}
    assert {c.clock for c in cache.cached_architecture(path).compute} == {940e6}


def test_a_warning_is_shown_on_every_run_and_such_a_file_is_not_kept(cache_dir, tmp_path):
    # a clock of 1e300 Hz validates, with a warning that it is implausibly large
    text = TPU.read_text().replace("clock: 700 MHz", "clock: 1e300 Hz", 1)
    path = _copy(tmp_path, text)
    for _ in range(2):
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            cache.load_architecture_cached(path)
        assert any(issubclass(w.category, SpecWarning) and "implausibly large" in str(w.message) for w in got)
        assert cache.cached_architecture(path) is None


def test_another_python_or_pydantic_misses(cache_dir, tmp_path, monkeypatch):
    path = _copy(tmp_path)
    cache.load_architecture_cached(path)
    monkeypatch.setattr(cache, "_versions", lambda: ("another python", "0.0"))
    assert cache.cached_architecture(path) is None


def test_an_unwritable_or_corrupt_cache_is_done_without(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DSE_CACHE_DIR", str(blocker / "cache"))   # cannot be created, even by root
    path = _copy(tmp_path)
    assert cache.load_architecture_cached(path) == load_architecture(path)
    assert cache.cached_architecture(path) is None
    folder = tmp_path / "cache"
    monkeypatch.setenv("DSE_CACHE_DIR", str(folder))
    cache.load_architecture_cached(path)
    for entry in (folder / "architectures").glob("*.pickle"):
        entry.write_bytes(b"\x80\x05garbage")
    assert cache.cached_architecture(path) is None
    assert cache.load_architecture_cached(path) == load_architecture(path)
    assert cache.cached_architecture(path) == load_architecture(path)  # rewritten


def test_bundled_tables_read_back_equal_to_pyyaml_and_follow_edits(cache_dir, tmp_path):
    memories = ROOT / "dse" / "tech" / "data" / "memories.yaml"
    reference = yaml.safe_load(memories.read_text())
    assert diskcache.bundled_yaml(memories) == reference           # parsed, then stored
    assert diskcache.bundled_yaml(memories) == reference           # read back
    table = tmp_path / "data" / "t.yaml"
    table.parent.mkdir()
    table.write_text("a: {x: 1, 2: [1.5, true, null]}\n")
    assert diskcache.bundled_yaml(table) == {"a": {"x": 1, 2: [1.5, True, None]}}
    table.write_text("a: {x: 10}\n")
    assert diskcache.bundled_yaml(table) == {"a": {"x": 10}}
    (cache_dir / "tables" / "data.t.yaml.marshal").write_bytes(b"garbage")
    assert diskcache.bundled_yaml(table) == {"a": {"x": 10}}


def _run(args: list[str], cache_folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DSE_CACHE_DIR": str(cache_folder)}
    return subprocess.run([sys.executable, "-m", "dse", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_dse_run_prints_the_same_cold_warm_and_after_an_edit(tmp_path):
    path = _copy(tmp_path)
    runs = [_run(["run", str(path), "-w", "mlp", "--format", "csv"], tmp_path / "c") for _ in range(2)]
    assert runs[0].returncode == 0 and runs[0].stdout == runs[1].stdout and runs[0].stderr == runs[1].stderr
    path.write_text(TPU.read_text().replace("name: tpu-v1-like", "name: my-edited-chip"))
    edited = _run(["run", str(path), "-w", "mlp", "--format", "csv"], tmp_path / "c")
    assert "my-edited-chip" in edited.stdout and "tpu-v1-like" not in edited.stdout
    for _ in range(2):                                             # a system file still runs as one
        system = _run(["run", "dgx-h100-ib", "-w", "gpt:layers=1,d_model=512,heads=8,seq=128", "--format", "csv"], tmp_path / "c")
        assert system.returncode == 0 and "dgx-h100-ib" in system.stdout, system.stderr


_READINGS = """
from dse.units import _registry
r = _registry()
print(float(r.Quantity('24 MiB').to('byte').magnitude), r.Quantity('3.9 pJ/bit').to('joule / bit').magnitude,
      r.Quantity('1 byte').dimensionality == r.Quantity('8 bit').dimensionality,
      r.Quantity('1 GHz').dimensionality == r.Quantity('1 GB/s').dimensionality,
      r.Quantity('989 TFLOPS').to('operation / second').magnitude)
"""


def test_pint_reads_the_same_units_with_its_definitions_cache_cold_warm_and_corrupt(tmp_path):
    """Pint's parsed definitions are kept in <cache dir>/pint: the registry read back from
    them holds information as a dimension, as the one parsed from the text does."""
    env = {**os.environ, "DSE_CACHE_DIR": str(tmp_path / "c"), "PYTHONPATH": str(ROOT)}

    def readings() -> list[str]:
        out = subprocess.run([sys.executable, "-c", _READINGS], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    # 24 MiB = 24 x 2^20 B; 3.9 pJ/bit; a byte and a bit share a dimension, a frequency and a
    # bandwidth do not; 989 TFLOPS = 9.89e14 op/s
    expected = [str(24.0 * 2**20), "3.9e-12", "True", "False", "989000000000000.0"]
    assert readings() == expected                          # cold: parsed, then kept
    parsed = list((tmp_path / "c" / "pint" / "parsed").iterdir())
    assert parsed, "Pint's definitions cache was not written"
    assert readings() == expected                          # warm: read back
    for f in parsed:
        f.write_bytes(b"\x80garbage")
    assert readings() == expected                          # corrupt: done without

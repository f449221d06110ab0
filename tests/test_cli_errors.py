"""Bad input: one line naming file (and line), field and problem; exit status 2; no traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from archs import BASE

import yaml


def dse(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def write_arch(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "arch.yaml"
    p.write_text(text)
    return p


def base_text(**edits) -> str:
    return yaml.safe_dump(BASE, sort_keys=False)


def assert_one_line_error(proc, *fragments: str) -> str:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def line_of(text: str, needle: str) -> int:
    return next(i for i, l in enumerate(text.splitlines(), 1) if needle in l)


def test_unknown_field_names_file_line_and_suggests(tmp_path):
    text = base_text().replace("  cols: 16\n", "  colums: 16\n", 1)
    p = write_arch(tmp_path, text)
    msg = assert_one_line_error(dse("check", str(p)), f"{p}:{line_of(text, 'colums')}",
                                "compute[0].colums", "unknown field")
    assert "cols" in msg  # did you mean


def test_missing_field(tmp_path):
    text = base_text().replace("  capacity: 4 GiB\n", "", 1)
    p = write_arch(tmp_path, text)
    assert_one_line_error(dse("check", str(p)), str(p), "memories[0].capacity", "missing")


@pytest.mark.parametrize("value", ["0 GB/s", "-5 GB/s"])
def test_zero_or_negative_bandwidth(tmp_path, value):
    text = base_text().replace("bandwidth_per_channel: 5 GB/s", f"bandwidth_per_channel: {value}")
    p = write_arch(tmp_path, text)
    assert_one_line_error(dse("check", str(p)), f"{p}:{line_of(text, 'bandwidth_per_channel')}",
                          "memories[0].bandwidth_per_channel", "greater than 0")


def test_unit_of_the_wrong_dimension(tmp_path):
    text = base_text().replace("bandwidth_per_channel: 5 GB/s", "bandwidth_per_channel: 3 GHz")
    p = write_arch(tmp_path, text)
    assert_one_line_error(dse("check", str(p)), f"{p}:{line_of(text, 'bandwidth_per_channel')}",
                          "'3 GHz' is a frequency, expected a bandwidth")


def test_malformed_yaml(tmp_path):
    text = base_text().replace("- name: vec\n", "- name: vec\n  bad: [unclosed\n", 1)
    p = write_arch(tmp_path, text)
    assert_one_line_error(dse("check", str(p)), f"{p}:", "malformed YAML")


def test_file_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert_one_line_error(dse("check", str(missing)), str(missing), "file not found")
    assert_one_line_error(dse("run", str(missing), "--workload", "mlp"), "file not found")


def test_sram_too_small_for_any_tile(tmp_path):
    text = base_text().replace("capacity: 1 MiB", "capacity: 256 B")
    p = write_arch(tmp_path, text)
    # the smallest tile streams one 16x16 int8 weight fold (256 B), double-buffered: 512 B
    proc = dse("run", str(p), "--workload", "gemm:m=64,n=64,k=64")
    assert_one_line_error(proc, "too small for any tile", "buf")


def test_weights_larger_than_every_tier(tmp_path):
    text = base_text().replace("capacity: 4 GiB", "capacity: 1 MiB")
    p = write_arch(tmp_path, text)
    proc = dse("run", str(p), "--workload", "gemm:m=1,n=2048,k=2048")  # 4 MiB of int8 weights
    assert_one_line_error(proc, "exceed every memory tier", "dram")


def test_unknown_workload_lists_known_ones():
    proc = dse("run", "tpu-v1-like", "--workload", "resnet51")
    assert_one_line_error(proc, "resnet51", "resnet50")


def test_unknown_bundled_architecture_lists_bundled():
    assert_one_line_error(dse("run", "tpu-v2", "--workload", "mlp"), "tpu-v1-like")


@pytest.mark.parametrize("args, fragment", [
    ((), "Missing argument"), (("h100-class",), "Missing option"), (("tpu-v1-like", "-w", "mlp", "--bogus"), "--bogus"),
])
def test_usage_errors_are_one_line_exit_2(args, fragment):
    assert_one_line_error(dse("run", *args), fragment, "dse run --help")


def test_non_finite_and_empty_values_are_rejected(tmp_path):
    text = base_text().replace("clock: 1 GHz", "clock: inf Hz", 1)
    p = write_arch(tmp_path, text)
    assert_one_line_error(dse("check", str(p)), "compute[0].clock", "not a finite")
    text = base_text().replace("  macs_per_cycle:\n    int8: 1\n", "  macs_per_cycle: {}\n", 1)
    p = write_arch(tmp_path, text)
    assert_one_line_error(dse("check", str(p)), "compute[0].macs_per_cycle")


@pytest.mark.parametrize("args", [
    ("run", "tpu-v1-like", "-w", "gemm", "--out", "{file}/ops.parquet"),   # a file where a folder must be
    ("run", "tpu-v1-like", "-w", "gemm", "--out", "{folder}"),             # a folder where a file must be
    ("sweep", "quickstart", "--n-trials", "1", "--out", "{file}"),        # the same for a study's folder
])
def test_an_output_path_the_system_refuses_is_one_line(tmp_path, args):
    (tmp_path / "taken.yaml").write_text("x: 1\n")
    (tmp_path / "dir.csv").mkdir()
    args = [a.format(file=tmp_path / "taken.yaml", folder=tmp_path / "dir.csv") for a in args]
    line = assert_one_line_error(dse(*args, cwd=tmp_path))
    assert str(tmp_path) in line  # names the path it could not write


def test_a_folder_holding_another_studys_tables_is_not_overwritten(tmp_path):
    out = tmp_path / "out"
    assert dse("sweep", "quickstart", "--n-trials", "2", "--out", str(out)).returncode == 0
    before = {p.name: p.read_bytes() for p in (out / "best").iterdir()} | {"trials.csv": (out / "trials.csv").read_bytes()}
    assert_one_line_error(dse("sweep", "multiobjective", "--n-trials", "2", "--out", str(out)),
                          "holds the tables of study 'quickstart'", "--out")
    after = {p.name: p.read_bytes() for p in (out / "best").iterdir()} | {"trials.csv": (out / "trials.csv").read_bytes()}
    assert after == before


def test_a_system_given_where_a_chip_is_expected_points_to_dse_system(tmp_path):
    assert_one_line_error(dse("check", "dgx-h100-ib"), "system of several chips", "dse system dgx-h100-ib")
    system = Path(__file__).resolve().parents[1] / "architectures" / "systems" / "dgx-h100-ib.yaml"
    assert_one_line_error(dse("serve", str(system), "-n", "2"), "system of several chips", "dse system")

"""`dse run` prints the summary as a table, CSV or JSON, and writes per-op tables."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest

COLUMNS = ["latency_s", "throughput_ops_per_s", "throughput_samples_per_s", "energy_j", "avg_power_w",
           "tops_per_w", "area_mm2", "bound"]


def dse(*args):
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True)


def test_run_tpu_v1_mlp_table_csv_and_json(tmp_path):
    table = dse("run", "tpu-v1-like", "--workload", "mlp")
    assert table.returncode == 0, table.stderr
    assert "tops_per_w" in table.stdout and "tpu-v1-like" in table.stdout
    csv = dse("run", "tpu-v1-like", "--workload", "mlp", "--format", "csv")
    df = pd.read_csv(io.StringIO(csv.stdout))
    assert len(df) == 1 and set(COLUMNS) <= set(df.columns)
    assert {"energy_mxu_j", "busy_mxu", "busy_ddr3", "bytes_read_ddr3", "bytes_written_ddr3"} <= set(df.columns)
    # the 4-layer MLP's ops: 2 per MAC plus vector ops, over the simulated time
    assert df["throughput_ops_per_s"][0] == pytest.approx(df["total_ops"][0] / df["latency_s"][0])
    rows = json.loads(dse("run", "tpu-v1-like", "-w", "mlp", "-f", "json").stdout)
    assert rows[0]["tops_per_w"] == pytest.approx(df["tops_per_w"][0])
    # the summary is written without pandas; pandas writing the same row (--out) gives the same bytes
    dse("run", "tpu-v1-like", "-w", "mlp", "--out", str(tmp_path / "s.csv"))
    assert (tmp_path / "s.csv").read_text() == csv.stdout


def test_run_per_op_and_out_files(tmp_path):
    out = tmp_path / "ops.parquet"
    proc = dse("run", "edge-npu-lpddr5", "-w", "resnet50", "--per-op", "--out", str(out), "-f", "csv")
    assert proc.returncode == 0, proc.stderr
    ops = pd.read_parquet(out)
    assert len(ops) == len(pd.read_csv(io.StringIO(proc.stdout)))
    assert set(ops["bound"]) <= {"compute", "lpddr5"}
    assert ops["macs"].sum() == pytest.approx(4.09e9, rel=0.01)   # torchvision's ResNet-50 count
    assert dse("run", "tpu-v1-like", "-w", "mlp", "--out", str(tmp_path / "x.txt")).returncode == 2

"""`dse system`, `dse run` on a system file, and bad system input: one line, exit 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def dse(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    import os
    env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True, cwd=cwd, env=env)


def one_line(proc, *fragments: str) -> str:
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


SYSTEM = {
    "name": "four-nodes",
    "chips": [{"architecture": "h100-class", "count": 16}],
    "links": {"nv": {"preset": "nvlink4", "lanes": 18}, "ib": {"preset": "ib-ndr"}},
    "topology": {"kind": "two_level", "node_size": 4, "intra": {"link": "nv"},
                 "inter": {"link": "ib", "switch": {"preset": "tomahawk5"}}},
    "parallelism": {"data": 4, "tensor": 4},
}
WL = "gpt:layers=2,d_model=1024,heads=16,seq=256"


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "system.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_run_a_system_file(tmp_path):
    p = write(tmp_path, SYSTEM)
    proc = dse("run", str(p), "-w", WL, "-f", "json")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)[0]
    assert row["chips"] == 16 and row["tensor"] == 4
    assert row["step_time_s"] > 0 and row["link_nv_bytes"] > 0 and row["link_ib_bytes"] > 0


def test_parallel_option_overrides_the_file(tmp_path):
    p = write(tmp_path, SYSTEM)
    proc = dse("run", str(p), "-w", WL, "-P", "data=2,tensor=4,pipeline=2,micro_batches=4", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)[0]
    assert (row["data"], row["pipeline"], row["micro_batches"]) == (2, 2, 4)


def test_describe_bundled_system():
    proc = dse("system", "dgx-h100-ib")
    assert proc.returncode == 0, proc.stderr
    assert "two_level" in proc.stdout and "nvlink" in proc.stdout


def test_torus_chip_count_mismatch(tmp_path):
    data = {**SYSTEM, "topology": {"kind": "torus", "shape": [4, 2], "link": "nv"}}
    p = write(tmp_path, data)
    line = one_line(dse("system", str(p)), "topology.shape", "4x2 torus has 8 chips", "the system has 16")
    assert line.startswith(f"error: {p}:")


def test_nodes_must_be_whole(tmp_path):
    data = {**SYSTEM, "topology": {**SYSTEM["topology"], "node_size": 3}}
    one_line(dse("system", str(write(tmp_path, data))), "node_size", "16 chips do not fill whole nodes of 3")


def test_zero_bandwidth_link(tmp_path):
    data = {**SYSTEM, "links": {**SYSTEM["links"], "ib": {"preset": "ib-ndr", "bandwidth": "0 GB/s"}}}
    one_line(dse("run", str(write(tmp_path, data)), "-w", WL), "links.ib.bandwidth", "greater than 0")


def test_unknown_link_name(tmp_path):
    data = {**SYSTEM, "topology": {**SYSTEM["topology"], "inter": {"link": "eth"}}}
    one_line(dse("system", str(write(tmp_path, data))), "topology.inter.link", "'eth' is not a link type")


def test_unknown_preset(tmp_path):
    data = {**SYSTEM, "links": {**SYSTEM["links"], "ib": {"preset": "ib-xdr"}}}
    one_line(dse("system", str(write(tmp_path, data))), "links.ib.preset", "unknown link preset")


def test_parallelism_product_differs_from_chip_count(tmp_path):
    p = write(tmp_path, SYSTEM)
    one_line(dse("run", str(p), "-w", WL, "-P", "data=3"), "3 x 4 x 1 = 12", "system has 16 chips")


def test_model_does_not_fit_under_the_sharding(tmp_path):
    p = write(tmp_path, SYSTEM)
    one_line(dse("run", str(p), "-w", "gpt:layers=64,d_model=12288,heads=96,seq=2048"),
             "does not fit", "h100-class has 74.51 GiB")


def test_bad_parallel_option(tmp_path):
    p = write(tmp_path, SYSTEM)
    one_line(dse("run", str(p), "-w", WL, "-P", "zero=5"), "--parallel", "zero")


def test_bundled_study_of_a_system_runs_and_reports(tmp_path):
    out = tmp_path / "osc"
    proc = dse("sweep", "optical-scaling", "--n-trials", "4", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    import pandas as pd
    df = pd.read_parquet(out / "trials.parquet").drop_duplicates("trial")
    assert (df["state"] == "COMPLETE").all()
    assert {"link_ib_utilisation", "scaling_efficiency", "comm_energy_j"} <= set(df.columns)
    # the best designs are system files that run as written
    best = sorted((out / "best").glob("*.yaml"))
    assert best
    run = dse("run", str(best[0]), "-w", "gpt:layers=2,d_model=1024,heads=16,seq=256", "-f", "json")
    assert run.returncode == 0, run.stderr
    rep = dse("report", str(out))
    assert rep.returncode == 0, rep.stderr
    assert "Scaling" in (out / "report.md").read_text()


def test_study_parameter_naming_no_system_field(tmp_path):
    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump({
        "name": "s", "architecture": "dgx-h100-ib", "workloads": [WL],
        "parameters": {"chips.0.cuont": {"choices": [8, 16]}}, "objectives": ["maximize throughput_samples_per_s"],
        "n_trials": 2}))
    one_line(dse("sweep", str(study), "--out", str(tmp_path / "o")), "chips.0.cuont", "did you mean")


def _link_study(tmp_path: Path, low: str, high: str) -> Path:
    return write(tmp_path, {
        "name": "links", "architecture": "dgx-h100-ib",
        "workloads": [{"spec": "gpt:layers=2,d_model=512,heads=8,seq=128,batch=1", "name": "g"}],
        "parameters": {"links.ib.latency": {"low": low, "high": high}},
        "derived": {"parallelism.data": 16, "parallelism.tensor": 1},
        "objectives": ["maximize throughput_samples_per_s"], "sampler": "random", "seed": 0, "n_trials": 2})


def test_a_searched_link_field_takes_units_of_its_dimension(tmp_path):
    """A range on a system file's link is checked as a chip's is: a size where a time belongs is
    one line naming the study file and the field."""
    study = _link_study(tmp_path, "1 GB", "10 GB")
    one_line(dse("sweep", str(study), "--out", str(tmp_path / "out")), "links.ib.latency", "expected a time")


def test_a_searched_link_fields_column_carries_its_unit(tmp_path):
    import pyarrow.parquet as pq

    study = _link_study(tmp_path, "1 us", "10 us")
    proc = dse("sweep", str(study), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    units = json.loads(pq.read_schema(tmp_path / "out" / "trials.parquet").metadata[b"dse.units"])
    assert units["param_links.ib.latency"] == "s"

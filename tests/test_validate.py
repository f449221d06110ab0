"""`dse validate`: the shipped suite runs, reports finite errors, and stays within physics.

The errors themselves are not asserted: they are what they are (see the README table).
What is asserted is what physics and bookkeeping demand: every case runs; dse never
exceeds the peak of the design it simulates (a roofline computed here from the design's
own fields) nor the peak bandwidth of the memory it replays; no case uses a held-out
measurement; bad case files fail with one line naming file, line and field.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from dse.errors import SpecError
from dse.sim.engine import simulate
from dse.spec.architecture import MemoryTier, SystolicArray, VectorUnit
from dse.spec.loader import load_architecture
from dse.validate import load_cases, run_validation, summarise
from dse.validate.cases_file import bundled_cases_dir
from dse.validate.kinds import KINDS
from dse.validate.kinds.workload import _resolve
from dse.workloads import load_workload

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return run_validation()


def test_every_bundled_case_runs_and_has_a_finite_error(table):
    cases = load_cases()
    assert len(table) == len(cases)
    assert list(table.columns) == ["case", "kind", "system", "metric", "unit", "measured", "dse",
                                   "error", "cite", "source", "notes"]
    assert table["case"].is_unique
    for col in ("measured", "dse", "error"):
        assert table[col].map(math.isfinite).all(), col
    assert (table["measured"] > 0).all() and (table["dse"] > 0).all()
    assert (table["error"] == table["dse"] / table["measured"] - 1).all()
    assert table["source"].str.len().min() > 20   # a citation, not a placeholder


def test_the_suite_spans_at_least_ten_cases_on_three_systems(table):
    s = summarise(table)
    assert s["cases"] >= 10 and s["systems"] >= 3
    assert set(table["kind"]) == set(KINDS)
    assert 0 <= s["median_abs_error"] <= s["worst_abs_error"]


HELD_OUT = ("jouppi", "isca 2017", "megatron", "narayanan", "korthikanti", "mlperf training",
            "splitwise", "tensorrt-llm", "tpu v4")


def test_no_case_uses_a_held_out_measurement():
    for case, _ in load_cases():
        text = f"{case.source} {case.notes} {case.system}".lower()
        assert not any(h in text for h in HELD_OUT), case.name
        # the TPU v1 paper is the project's independent check: no case runs a TPU v1 design
        assert "tpu-v1" not in str(getattr(case, "architecture", "")), case.name


def _peak_ops_per_s(arch, precision: str) -> float:
    """Roofline of a design from its own fields: 2 x MACs/cycle of every array + vector ops."""
    peak = 0.0
    for u in arch.compute:
        if isinstance(u, SystolicArray):
            rate = max(u.macs_per_cycle.values()) if precision not in u.macs_per_cycle else u.macs_per_cycle[precision]
            peak += 2 * u.rows * u.cols * u.count * u.clock * rate
        elif isinstance(u, VectorUnit):
            peak += u.lanes * u.count * u.clock * u.ops_per_lane_per_cycle
    return peak


def test_workload_cases_never_beat_their_designs_roofline():
    for case, base in load_cases():
        if case.kind != "workload":
            continue
        arch = load_architecture(_resolve(case.architecture, base), overrides=case.overrides or None)
        wl = load_workload(_resolve(case.workload, base), batch=case.batch, precision=case.precision)
        r = simulate(arch, wl).summary_row
        precision = case.precision or wl.ops[0].precision
        assert r["throughput_ops_per_s"] <= _peak_ops_per_s(arch, precision) * (1 + 1e-9), case.name


def test_workload_cases_respect_the_floors_of_traffic_and_energy(table):
    """Off-chip traffic is at least every weight once; chip energy at least its MACs' energy."""
    from dse.workloads import op_table

    by_case = table.set_index("case")
    for case, base in load_cases():
        if case.kind != "workload" or case.metric not in ("offchip_bytes_per_mac", "avg_power_w"):
            continue
        arch = load_architecture(_resolve(case.architecture, base), overrides=case.overrides or None)
        wl = load_workload(_resolve(case.workload, base), batch=case.batch, precision=case.precision)
        dse_value = by_case.loc[case.name, "dse"]
        if case.metric == "offchip_bytes_per_mac":
            weights = op_table(wl)["bytes_weights"].sum()
            assert dse_value * wl.macs >= weights * (1 - 1e-9), case.name
        else:
            r = simulate(arch, wl).summary_row
            (array,) = [u for u in arch.compute if isinstance(u, SystolicArray)]
            mac_energy = wl.macs * array.energy_per_mac[case.precision or wl.ops[0].precision]
            assert dse_value * r["latency_s"] >= mac_energy * (1 - 1e-9), case.name


def test_small_random_reads_on_optane_pay_for_whole_256_byte_lines(tmp_path):
    """Each random 64 B read fetches a 256 B media line: a quarter of the sequential bandwidth."""
    seq = """\
cases:
  - {name: seq, kind: memory, system: s, source: a hand count of media lines, cite: hand count,
     memory: optane-pmem, metric: achieved_bandwidth_bps, measured: 1 GB/s,
     pattern: {access: sequential, size: 256 B}}
  - {name: rnd, kind: memory, system: s, source: a hand count of media lines, cite: hand count,
     memory: optane-pmem, metric: achieved_bandwidth_bps, measured: 1 GB/s,
     pattern: {access: random, size: 64 B, footprint: 64 GiB}}
"""
    t = run_validation(_write(tmp_path, seq)).set_index("case")["dse"]
    assert t["rnd"] == pytest.approx(t["seq"] / 4, rel=0.01)


def test_memory_cases_never_beat_the_peak_bandwidth_of_their_units(table):
    for case, _ in load_cases():
        if case.kind != "memory":
            continue
        tier = MemoryTier.model_validate({"name": "m", "technology": case.memory, "channels": case.units,
                                          **case.overrides})
        row = table.set_index("case").loc[case.name]
        if case.metric == "achieved_bandwidth_bps":
            assert row["dse"] <= tier.bandwidth * (1 + 1e-9), case.name


def test_the_cases_ship_in_the_wheel():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = cfg["tool"]["setuptools"]["packages"]
    for pkg in ("dse.validate", "dse.validate.kinds", "dse.validate.cases", "dse.validate.cases.designs",
                "dse.validate.cases.workloads"):
        assert pkg in packages
    assert "*.yaml" in cfg["tool"]["setuptools"]["package-data"]["*"]
    assert sorted(bundled_cases_dir().glob("*.yaml"))


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "cases.yaml"
    p.write_text(text)
    return p


GOOD = """\
cases:
  - name: x
    kind: memory
    system: a DIMM
    source: somebody, some paper, 2020, Table 1, the figure
    cite: somebody 2020
    memory: ddr4-3200
    metric: achieved_bandwidth_bps
    measured: 20 GB/s
"""


def test_a_case_file_of_ones_own_runs(tmp_path):
    t = run_validation(_write(tmp_path, GOOD))
    assert list(t["case"]) == ["x"]
    # one DDR4-3200 channel streams sequential reads below its 25.6 GB/s peak
    assert 0 < t.loc[0, "dse"] <= 25.6e9


@pytest.mark.parametrize("edit, where, message", [
    (("    memory: ddr4-3200\n", "    memroy: ddr4-3200\n"), ":7", "unknown field 'memroy'"),
    (("measured: 20 GB/s", "measured: 20 GHz"), ":9", "expected a bandwidth"),
    (("metric: achieved_bandwidth_bps", "metric: tops"), ":8", "not a metric of kind 'memory'"),
    (("kind: memory", "kind: teleport"), ":3", "unknown kind 'teleport'"),
    (("measured: 20 GB/s", "measured: -1 GB/s"), ":9", "positive"),
])
def test_bad_case_files_fail_with_file_line_and_field(tmp_path, edit, where, message):
    p = _write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(SpecError) as exc:
        load_cases(p)
    text = str(exc.value)
    assert f"{p}{where}" in text and message in text


def test_cli_prints_the_table_and_json_and_fails_cleanly(tmp_path):
    env_cmd = [sys.executable, "-m", "dse", "validate"]
    run = subprocess.run(env_cmd + ["--kind", "memory", "--format", "json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert {c["kind"] for c in doc["cases"]} == {"memory"}
    assert doc["summary"]["cases"] == len(doc["cases"])
    run = subprocess.run(env_cmd + ["--format", "csv", "--case", "optane"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.startswith("case,kind,system,metric")
    bad = _write(tmp_path, GOOD.replace("20 GB/s", "20 GHz"))
    run = subprocess.run(env_cmd + [str(bad)], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "cases.yaml:9" in run.stderr


def test_stream_kernels_read_and_write_their_arrays_in_the_published_ratio():
    """STREAM triad reads two arrays and writes one (McCalpin); copy reads one and writes one."""
    from dse.validate.kinds.memory import Pattern, accesses

    tri = accesses(Pattern(op="triad", size=64, count=3000, footprint=2**20))
    assert int((~tri["is_write"]).sum()) == 2000 and int(tri["is_write"].sum()) == 1000
    region = tri["address"].to_numpy() // 2**20
    assert set(region[tri["is_write"].to_numpy()]) == {2} and set(region[~tri["is_write"].to_numpy()]) == {0, 1}
    # each array is swept sequentially, one 64 B line per step
    b = tri["address"].to_numpy()[region == 0]
    assert (b[1:] - b[:-1] == 64).all()
    cp = accesses(Pattern(op="copy", size=64, count=1000))
    assert int(cp["is_write"].sum()) == 500


def test_a_case_whose_design_is_missing_fails_naming_the_case(tmp_path):
    text = GOOD.replace("kind: memory", "kind: workload").replace(
        "    memory: ddr4-3200\n", "    architecture: nowhere.yaml\n    workload: gemm\n").replace(
        "metric: achieved_bandwidth_bps", "metric: latency_s").replace("measured: 20 GB/s", "measured: 1 ms")
    with pytest.raises(SpecError) as exc:
        run_validation(_write(tmp_path, text))
    assert "case 'x'" in str(exc.value) and "nowhere.yaml" in str(exc.value)

"""Every column of the trial table carries its unit (Parquet metadata), checked against the
dimension of the architecture field each parameter sets; printed values are for people;
constraint columns are named for their constraint; a design proposed again is not re-simulated."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import search_fixtures as fx

from dse.search.study import run_study
from dse.units import DIMENSIONS, _registry

_ureg = _registry()  # Pint with the bit as its own dimension, as dse reads unit strings

ROOT = Path(__file__).resolve().parents[1]


def _dimension_of(arch, path: str) -> str | None:
    """The field's dimension straight from the pydantic model of the component it names."""
    from dse.spec.quantities import field_dimension

    section, name, field = path.split(".")
    component = next(c for c in getattr(arch, section) if c.name == name)
    return field_dimension(type(component), field)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("qs") / "out"
    proc = subprocess.run([sys.executable, "-m", "dse", "sweep", "quickstart", "--n-trials", "5", "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    (out / "stdout.txt").write_text(proc.stdout)
    return out


def test_every_column_has_a_unit_that_matches_its_field(quickstart):
    from dse.spec.loader import load_architecture

    schema = pq.read_schema(quickstart / "trials.parquet")
    units = json.loads(schema.metadata[b"dse.units"])
    df = pd.read_parquet(quickstart / "trials.parquet")
    assert set(units) == set(df.columns)
    for f in schema:  # each field carries its own unit too
        assert f.metadata[b"unit"].decode() == units[f.name]
    arch = load_architecture("tpu-v1-like")
    params = [c for c in df.columns if c.startswith("param_")]
    assert len(params) == 3 + 5  # the quick start's 3 searched and 5 derived parameters
    for col in params:
        dim = _dimension_of(arch, col[len("param_"):])
        if dim is None:  # rows, cols, channels: counts
            assert units[col] == "1", col
        else:  # the unit Pint reads has the field's dimension, and is the SI unit tables hold
            q = _ureg.Quantity(1, units[col])
            si = _ureg.Quantity(1, DIMENSIONS[dim][0])
            assert q.dimensionality == si.dimensionality, col
            assert math.isclose(q.to(si.units).magnitude, 1.0), col
    expected = {"param_compute.mxu.clock": "Hz", "param_sram.weight_fifo.capacity": "B",
                "param_compute.mxu.area": "mm**2", "param_compute.mxu.leakage": "W",
                "param_memories.ddr3.background_power": "W", "param_compute.mxu.rows": "1"}
    assert {k: units[k] for k in expected} == expected
    # metrics: every numeric one has a unit Pint can read, consistent with the suffix of its name
    for col in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        if col.startswith("param_") or not numeric \
                or col in ("trial", "pareto_rank", "duplicate_of"):  # identifiers, not quantities
            continue
        unit = units[col]
        assert unit, col
        if unit in ("1", "TOPS/W", "sample/s", "sample", "op", "op/s", "MAC", "op/B"):
            continue
        q = _ureg.Quantity(1, unit)
        for suffix, dim in (("_s", "time"), ("_j", "energy"), ("_w", "power"), ("_mm2", "area"),
                            ("_bytes", "bytes"), ("_bps", "bandwidth")):
            if col.endswith(suffix) and not col.endswith("_per_s"):
                assert q.dimensionality == _ureg.Quantity(1, DIMENSIONS[dim][0]).dimensionality, col
    assert units["latency_s"] == "s" and units["energy_j"] == "J" and units["bytes_read_ddr3"] == "B"
    assert units["peak_bytes_ddr3"] == "B"  # what the tier holds at its fullest


@pytest.mark.parametrize("column, dimension", [
    ("tokens_per_j", "1 / J"),                          # output tokens per joule: a count per energy
    ("throughput_tokens_per_s", "1 / s"),
    ("peak_bytes_hbm3", "B"),                           # bytes a tier holds at its fullest
    ("achieved_bandwidth_hbm3_bps", "B / s"),           # bytes moved per second
    ("energy_hbm3_j", "J"),
])
def test_a_columns_unit_has_the_dimension_its_name_says(column, dimension):
    from dse.columns import metric_unit

    unit = metric_unit(column)
    assert unit, column
    assert _ureg.Quantity(1, unit).dimensionality == _ureg.Quantity(1, dimension).dimensionality, column


def test_constraint_columns_are_named_for_their_constraint(quickstart):
    df = pd.read_parquet(quickstart / "trials.parquet")
    units = json.loads(pq.read_schema(quickstart / "trials.parquet").metadata[b"dse.units"])
    cons = [c for c in df.columns if c.startswith("constraint")]
    assert cons == ["constraint: avg_power_w <= 75 W", "constraint: area_mm2 <= 400 mm^2", "constraint: fits_memory"]
    assert [units[c] for c in cons] == ["W", "mm**2", "B"]
    agg = df[(df["workload"] == "__all__") & (df["state"] == "COMPLETE")]
    # value = metric - bound: the power constraint's value is the power less 75 W
    assert (agg["constraint: avg_power_w <= 75 W"] == agg["avg_power_w"] - 75).all()


def test_printed_best_designs_read_in_units(quickstart):
    text = (quickstart / "stdout.txt").read_text()
    df = pd.read_parquet(quickstart / "trials.parquet")
    agg = df[(df["workload"] == "__all__") & (df["pareto_rank"] >= 0)]
    clock = agg.sort_values("tops_per_w", ascending=False)["param_compute.mxu.clock"].iloc[0]
    assert f"{clock / 1e6:.3g} MHz" in text or f"{clock / 1e9:.3g} GHz" in text
    assert "e+0" not in text and "TOPS/W" in text
    assert "pareto_rank" not in text  # one objective: no Pareto ranks


@pytest.mark.parametrize("value, unit, shown", [(1.194e9, "Hz", "1.19 GHz"), (12 * 2**20, "B", "12 MiB"),
                                                (1.258e7, "B", "12 MiB"), (9.908e8, "Hz", "991 MHz"),
                                                (6.47e-3, "J", "6.47 mJ"), (331.0, "mm**2", "331 mm²"),
                                                (256, "1", "256"), (float("nan"), "W", "–")])
def test_values_for_people(value, unit, shown):
    from dse.columns import human

    assert human(value, unit) == shown


def test_a_design_proposed_again_reuses_the_earlier_trial(tmp_path, monkeypatch):
    """Four designs, twelve trials: the sampler must repeat designs; each is simulated once."""
    import dse.search.objective as objective

    calls: list[int] = []
    real = objective.simulate

    def counting(arch, workload, **kw):
        calls.append(arch.compute[0].rows)
        return real(arch, workload, **kw)

    monkeypatch.setattr(objective, "simulate", counting)
    spec = fx.study(sampler="random", n_trials=12, parameters={"compute.pe.rows": {"choices": [32, 64, 128, 256]}},
                    workloads=["gemm:m=256,n=256,k=256"])
    df = run_study(fx.write(tmp_path, spec))
    agg = df[df["workload"] == "__all__"]
    assert len(agg) == 12
    assert sorted(calls) == sorted(set(calls)) and len(calls) == agg["param_compute.pe.rows"].nunique()
    dups = agg[agg["duplicate_of"] >= 0]
    assert len(dups) == 12 - len(calls)
    first = agg.set_index("trial")
    for _, row in dups.iterrows():
        orig = first.loc[row["duplicate_of"]]
        assert orig["duplicate_of"] == -1 and orig["param_compute.pe.rows"] == row["param_compute.pe.rows"]
        assert orig["tops_per_w"] == row["tops_per_w"] and orig["latency_s"] == row["latency_s"]

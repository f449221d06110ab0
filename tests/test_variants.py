"""One design-variant builder: the file a study writes is the design it scored, and an
override of a technology takes that technology's figures from the library."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dse.cli import app
from dse.search.resolve import bundled_studies, resolve_study
from dse.search.study import run_study
from dse.spec.loader import load_architecture
from dse.tech.library import technology
from dse.units import to_si


#: the case the engine issue measured: DDR5 DIMMs on a tier whose per-DIMM figures come
#: from the library (a study scored 3.24 W of DDR background, its best file ran at 6.48 W)
DIMM_STUDY = """name: dimms
architecture: hbm-ddr-tiered
workloads: ["gpt:phase=decode,layers=4,d_model=1024,heads=8,seq=256"]
parameters:
  memories.ddr.channels: {choices: [2, 8]}
objectives: [maximize tops_per_w]
sampler: grid
"""


@pytest.mark.parametrize("name", [*bundled_studies(), "dimms"])
def test_best_designs_reproduce_their_trial_rows_under_dse_run(name, tmp_path):
    if name == "dimms":
        (tmp_path / "dimms.yaml").write_text(DIMM_STUDY)
        name = str(tmp_path / "dimms.yaml")
        tmp_path = tmp_path / "out"
    st = resolve_study(name)
    n = 2 if st.spec.sampler == "grid" else 8
    run_study(name, n_trials=n, out_dir=tmp_path)
    table = pd.read_parquet(tmp_path / "trials.parquet")
    files = sorted((tmp_path / "best").glob("*.yaml"))
    assert files, "the study wrote no best design"
    runner = CliRunner()
    checked = 0
    for f in files:
        trial = int(re.search(r"trial(\d+)", f.name).group(1))
        for w in st.spec.workloads:
            row = table[(table["trial"] == trial) & (table["workload"] == w.label)].iloc[0]
            spec = w.spec
            if spec.startswith("serve:"):  # a serving trial's knobs are not chip fields: give them back
                knobs = [c for c in table.columns if c.startswith("param_serving.")]
                spec += "".join(f",{c[len('param_serving.'):]}={row[c]}" for c in knobs)
            args = ["run", str(f), "-w", spec, "-f", "json"]
            if w.batch is not None:
                args += ["--batch", str(w.batch)]
            if w.precision is not None:
                args += ["--precision", w.precision]
            out = runner.invoke(app, args)
            assert out.exit_code == 0, out.output
            ran = json.loads(out.stdout)[0]
            for col, value in ran.items():
                if col in ("architecture", "workload"):
                    continue
                assert col in row.index, f"{f.name} {w.label}: {col} missing from the trial table"
                stored = row[col]
                if isinstance(value, float) and isinstance(stored, float) and math.isnan(value):
                    assert math.isnan(stored)
                    continue
                assert stored == value, f"{f.name} {w.label}: {col} ran {value!r}, trial row {stored!r}"
                checked += 1
    assert checked > 20
    if st.name == "dimms":   # both designs written, each with its own DIMM count's background power
        assert len(files) == 2


def _library(name: str) -> dict:
    e = technology(name)
    out = {"bandwidth_per_channel": to_si(e["peak_bandwidth"], "bandwidth")}
    if "read_latency" in e:
        out["latency"] = to_si(e["read_latency"], "time")
    else:
        out["latency"] = to_si(e["timing"]["tRCD"], "time") + to_si(e["timing"]["tCL"], "time")
    energy = e.get("energy") or {}
    for key in ("read", "write"):
        if energy.get(key) is not None:
            out[f"{key}_energy"] = to_si(energy[key], "energy_per_bit")
    return out


@pytest.mark.parametrize("tech", ["hbm3", "hbm2e", "lpddr5-6400", "gddr6", "ddr5-4800"])
def test_an_api_override_of_technology_takes_the_library_figures(tech):
    # tpu-v1-like states DDR3's bandwidth, latency and energies in its file; a new technology
    # must replace every one of them, not keep DDR3's 17 GB/s per channel
    arch = load_architecture("tpu-v1-like", overrides={"memories.ddr3.technology": tech})
    tier = arch.memory_named("ddr3")
    for field, value in _library(tech).items():
        assert getattr(tier, field) == pytest.approx(value, rel=1e-12), field
    assert tier.channels == 2 and tier.capacity == 8 * 2**30      # the design's own choices kept


def test_an_override_of_the_unit_count_rescales_per_unit_figures():
    # hbm-ddr-tiered's DDR5 tier takes background power per DIMM from the library
    per_dimm = to_si(technology("ddr5-4800")["background_power"], "power")
    base = load_architecture("hbm-ddr-tiered")
    eight = load_architecture("hbm-ddr-tiered", overrides={"memories.ddr.channels": 8})
    assert eight.memory_named("ddr").background_power == pytest.approx(8 * per_dimm, rel=1e-12)
    # the same through an Architecture object (no file at hand): the same variant
    again = load_architecture(base, overrides={"memories.ddr.channels": 8})
    assert again.memory_named("ddr").background_power == eight.memory_named("ddr").background_power
    assert again == eight


def test_an_unknown_override_path_says_what_was_meant():
    from dse.errors import SpecError

    with pytest.raises(SpecError, match="did you mean memories.ddr3.channels"):
        load_architecture("tpu-v1-like", overrides={"memories.ddr3.chanels": 4})

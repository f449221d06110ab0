"""Every access in the technology library and the bundled designs has a sourced, non-zero energy.

Walks dse/tech/data/memories.yaml (memory and SRAM technologies), compute.yaml (MAC energies
by precision and node) and imc.yaml, then every bundled design: no access kind may be
charged 0 J unless its technology's per-bit figure is a stated total that includes it, and
each figure must name a key of the SOURCES.md bibliography. The DRAM figures derived from
datasheet IDD currents are recomputed here from those currents (Micron TN-41-01 method).
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml

from dse.spec.architecture import Architecture, SystolicArray, VectorUnit
from dse.spec.loader import load_architecture
from dse.tech.compute import mac_energy
from dse.tech.imc import CrossbarParams
from dse.tech.library import INCLUDED, access_kinds, memory_technologies
from dse.units import to_si

DATA = resources.files("dse.tech.data")
SOURCES_MD = DATA.joinpath("SOURCES.md").read_text()
BIB_KEYS = set(re.findall(r"^\| ([A-Za-z][\w-]*) \|", SOURCES_MD.split("## Derivations")[0], re.M)) - {"key"}
TECHS = memory_technologies()
COMPUTE = yaml.safe_load(DATA.joinpath("compute.yaml").read_text())
IMC = yaml.safe_load(DATA.joinpath("imc.yaml").read_text())["technologies"]
DESIGNS = sorted(p.stem for p in (Path(__file__).parents[1] / "architectures").glob("*.yaml"))
DIM = {"read": "energy_per_bit", "write": "energy_per_bit", "activate": "energy", "refresh": "energy"}


def _cites_a_source(text) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", str(text)) for k in BIB_KEYS)


def test_the_bibliography_was_read():
    assert {"Horowitz14", "Micron-MT41J", "Ayna26", "Izraelevitz19", "Micron-Y52P"} <= BIB_KEYS


@pytest.mark.parametrize("name", list(TECHS))
def test_every_access_kind_of_every_technology_has_a_sourced_nonzero_energy(name):
    e = TECHS[name]
    energy, sources = e.get("energy") or {}, e.get("energy_sources") or {}
    for kind in access_kinds(e):
        assert kind in energy, f"{name}: no energy.{kind}"
        value = energy[kind]
        if value == INCLUDED:
            # only a part of a stated per-bit total may be 'included', never the access itself
            assert kind in ("activate", "refresh"), f"{name}: energy.{kind} cannot be 'included'"
        else:
            assert to_si(value, DIM[kind]) > 0, f"{name}: energy.{kind} is zero"
        assert _cites_a_source(sources.get(kind)), f"{name}: energy.{kind} names no SOURCES.md key"
    if "background_power" in e:
        assert _cites_a_source(sources.get("background_power")), f"{name}: background_power has no source"


def test_the_three_memories_that_charged_nothing_now_charge_their_sourced_figures():
    assert to_si(TECHS["hbm3"]["energy"]["read"], "energy_per_bit") == pytest.approx(5.8e-12)
    assert to_si(TECHS["hbm3"]["background_power"], "power") == pytest.approx(6.4)
    assert "PROXY" in TECHS["hbm3"]["energy_sources"]["read"]
    assert to_si(TECHS["lpddr5-6400"]["energy"]["read"], "energy_per_bit") > 0
    assert "PROXY" in TECHS["lpddr5-6400"]["energy_sources"]["read"]
    assert "UPPER BOUND" in TECHS["optane-pmem"]["energy_sources"]["write"]


def _idd(e, key):
    value, unit = str(e["power_inputs"][key]).split()
    assert unit == "mA"
    return float(value) * 1e-3


@pytest.mark.parametrize("name", [n for n, e in TECHS.items() if "power_inputs" in e])
def test_idd_derived_dram_energies_follow_from_the_datasheet_currents(name):
    """Micron TN-41-01 / DRAMPower: per x8 device, times the 8 devices of a x64 rank."""
    e = TECHS[name]
    vdd = float(str(e["power_inputs"]["VDD"]).split()[0])
    t = {k: to_si(v, "time") for k, v in e["timing"].items()}
    bits_per_s = float(e["data_rate"]) * 8               # one x8 device
    idd = {k: _idd(e, k) for k in ("IDD0", "IDD2N", "IDD3N", "IDD4R", "IDD4W", "IDD5B")}
    read = (idd["IDD4R"] - idd["IDD3N"]) * vdd / bits_per_s
    write = (idd["IDD4W"] - idd["IDD3N"]) * vdd / bits_per_s
    refresh = (idd["IDD5B"] - idd["IDD3N"]) * vdd * t["tRFC"] * 8
    background = idd["IDD2N"] * vdd * 8
    energy = e["energy"]
    assert to_si(energy["read"], "energy_per_bit") == pytest.approx(read, rel=0.01)
    assert to_si(energy["write"], "energy_per_bit") == pytest.approx(write, rel=0.01)
    assert to_si(energy["refresh"], "energy") == pytest.approx(refresh, rel=0.01)
    assert to_si(e["background_power"], "power") == pytest.approx(background, rel=0.01)
    act_tn41 = (idd["IDD0"] * t["tRC"] - (idd["IDD3N"] * t["tRAS"] + idd["IDD2N"] * t["tRP"])) * vdd * 8
    if act_tn41 > 0:
        assert to_si(energy["activate"], "energy") == pytest.approx(act_tn41, rel=0.01)
    else:  # DDR5: IDD3N has all banks open; charged against the precharged background instead
        act = (idd["IDD0"] - idd["IDD2N"]) * vdd * t["tRC"] * 8
        assert to_si(energy["activate"], "energy") == pytest.approx(act, rel=0.01)


@pytest.mark.parametrize("precision", list(COMPUTE["mac_by_precision"]))
@pytest.mark.parametrize("node_nm", [45, 32, 28, 20, 7])
def test_every_mac_in_the_compute_table_is_sourced_and_nonzero(node_nm, precision):
    energy, source = mac_energy(node_nm * 1e-9, precision)
    assert energy > 0 and _cites_a_source(source)


def test_mac_energy_scales_from_horowitz_by_the_node_factor():
    # 45 nm int8 multiply 0.2 pJ + 32-bit add 0.1 pJ (Horowitz 2014); x 0.641 to 32 nm
    assert mac_energy(45e-9, "int8")[0] == pytest.approx(0.3e-12)
    assert mac_energy(32e-9, "int8")[0] == pytest.approx(0.3e-12 * 0.641)
    assert mac_energy(28e-9, "int8")[0] < mac_energy(32e-9, "int8")[0] < mac_energy(45e-9, "int8")[0]


@pytest.mark.parametrize("name", list(IMC))
def test_every_imc_event_energy_is_nonzero(name):
    params = CrossbarParams.from_library(name)
    energies = {f.name: getattr(params, f.name) for f in dataclasses.fields(params) if "energy" in f.name}
    assert len(energies) >= 5 and all(v > 0 for v in energies.values()), energies


@pytest.mark.parametrize("design", DESIGNS)
def test_every_bundled_design_charges_every_access_a_sourced_nonzero_energy(design):
    arch = load_architecture(design)
    for mem in arch.memories:
        entry = TECHS.get(mem.technology) if mem.technology else None
        kinds = access_kinds(entry) if entry else ("read", "write")
        for kind in kinds:
            value = getattr(mem, f"{kind}_energy")
            if value == 0:
                assert entry is not None and entry["energy"].get(kind) == INCLUDED, (design, mem.name, kind)
            else:
                assert value > 0
        assert mem.background_power is not None
    for sram in arch.sram:
        assert sram.read_energy > 0 and sram.write_energy > 0, (design, sram.name)
    for unit in arch.compute:
        if isinstance(unit, SystolicArray):
            assert set(unit.macs_per_cycle) <= set(unit.energy_per_mac), (design, unit.name)
            assert all(v > 0 for v in unit.energy_per_mac.values()), (design, unit.name)
        elif isinstance(unit, VectorUnit):
            assert unit.energy_per_op > 0, (design, unit.name)


def _run(*args, **env):
    return subprocess.run([sys.executable, "-m", "dse", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "250", **env})


def test_dse_check_shows_every_tiers_energy_and_its_source():
    out = _run("check", "h100-class").stdout
    assert re.search(r"read_energy: 5\.8 pJ/bit from hbm3: Ayna26 \(PROXY", out)
    assert re.search(r"background_power: 32 W from hbm3: Ayna26", out)          # 5 stacks x 6.4 W
    assert re.search(r"activate_energy: 0 J from hbm3: included", out)
    assert re.search(r"read_energy: 17\.7 fJ/bit from sram-7nm: Horowitz14", out)
    tpu = _run("check", "tpu-v1-like").stdout
    assert re.search(r"energy_per_mac\.int8: 152 fJ from the compute table: Horowitz14", tpu)
    assert re.search(r"activate_energy: 15\.5 nJ from ddr3-2133: Micron-MT41J", tpu)


BASE = """name: x
technology_node: 7 nm
compute:
  - {name: pe, kind: systolic, rows: 8, cols: 8, clock: 1 GHz, buffer: s}
sram:
  - {name: s, capacity: 1 MiB, bandwidth: 1 TB/s, technology: sram-7nm}
memories:
  - {name: m, technology: hbm3, capacity: 1 GiB}
"""


@pytest.mark.parametrize("edit, fragments", [
    # a technology without a sourced figure: an error naming the field, unless the YAML gives it
    (("technology: hbm3, capacity: 1 GiB", "technology: hbm2-micro17, capacity: 1 GiB"),
     ["memories[0].background_power", "hbm2-micro17", "no sourced figure"]),
    (("technology: hbm3, capacity: 1 GiB}", "capacity: 1 GiB, bandwidth_per_channel: 1 GB/s}"),
     ["memories[0].read_energy", "required"]),
    (("technology: sram-7nm}", "read_energy: 1 pJ/bit}"), ["sram[0].write_energy", "required"]),
    (("technology: sram-7nm}", "technology: ddr4-3200}"), ["sram[0].technology", "not sram"]),
    (("technology_node: 7 nm\n", ""), ["compute[0].energy_per_mac.int8", "technology_node"]),
    (("technology_node: 7 nm", "technology_node: 4 nm"), ["compute[0].energy_per_mac.int8", "4nm"]),
    (("clock: 1 GHz, buffer", "clock: 1 GHz, macs_per_cycle: {fp8: 1}, buffer"),
     ["compute[0].energy_per_mac.fp8", "no fp8 MAC"]),
])
def test_a_missing_energy_is_one_line_naming_the_field(tmp_path, edit, fragments):
    p = tmp_path / "a.yaml"
    p.write_text(BASE.replace(*edit))
    proc = _run("check", str(p))
    assert proc.returncode == 2, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_the_yaml_value_wins_over_a_missing_library_figure(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(BASE.replace("technology: hbm3, capacity: 1 GiB",
                              "technology: hbm2-micro17, capacity: 1 GiB, background_power: 2 W"))
    proc = _run("check", str(p))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"background_power: 2 W from the YAML", proc.stdout)
    assert re.search(r"read_energy: 3\.9 pJ/bit from hbm2-micro17: OConnor17", proc.stdout)


def _probe(tech: str):
    """A chip whose only memory tier is ``tech`` (fields a cell-level entry lacks given here)."""
    entry = TECHS[tech]
    tier = {"name": "mem", "technology": tech, "capacity": "1 GiB"}
    if not (entry.get("peak_bandwidth") or entry.get("read_bandwidth")):
        tier["bandwidth_per_channel"] = "10 GB/s"
    if "background_power" not in entry:
        tier["background_power"] = "1 W"
    return Architecture.model_validate({
        "name": f"probe-{tech}", "technology_node": "7 nm",
        "compute": [{"name": "vec", "kind": "vector", "lanes": 4096, "clock": "2 GHz", "buffer": "buf"}],
        "sram": [{"name": "buf", "capacity": "64 MiB", "bandwidth": "100 TB/s", "technology": "sram-7nm"}],
        "memories": [tier],
        "placement": {"weights": "mem", "activations": "buf", "embeddings": "mem"},
    })


@pytest.mark.parametrize("tech", [n for n, e in TECHS.items() if e.get("family") != "sram"])
@pytest.mark.parametrize("kind", ["read", "write"])
def test_every_technology_charges_its_reads_and_writes_in_a_run(tech, kind):
    """End to end: moving bytes on any library technology costs at least bytes x 8 x its per-bit figure."""
    from dse.sim.engine import simulate
    from dse.workloads.ops import Op, Workload

    nbytes = 4 * 2**20
    role = {"in_role": "embeddings"} if kind == "read" else {"out_role": "embeddings"}
    r = simulate(_probe(tech), Workload("move", [Op("move", "vector", elements=nbytes, **role)]))
    row = r.summary.iloc[0]
    static = sum(row[k] for k in row.index if k.startswith("energy_mem_") and k.endswith(("_background_j", "_refresh_j")))
    dynamic = row["energy_mem_j"] - static
    per_bit = to_si(TECHS[tech]["energy"][kind], "energy_per_bit")
    assert dynamic >= nbytes * 8 * per_bit * (1 - 1e-9) > 0


def test_replay_charges_the_memories_that_used_to_cost_nothing(tmp_path):
    import json

    trace = tmp_path / "t.trace"
    trace.write_text("".join(f"{10 * i} 0x{i * 4096:x} {'W' if i % 4 == 0 else 'R'}\n" for i in range(1000)))
    proc = _run("replay", str(trace), "--memory", "hbm3,lpddr5-6400,optane-pmem", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["memory"]: r for r in json.loads(proc.stdout)}
    for name in ("hbm3", "lpddr5-6400", "optane-pmem"):
        read_j = 750 * 64 * 8 * to_si(TECHS[name]["energy"]["read"], "energy_per_bit")  # >= 64 B per access
        assert rows[name]["energy_j"] >= read_j > 0, rows[name]


def test_replay_of_a_technology_that_cannot_stand_alone_is_one_line(tmp_path):
    trace = tmp_path / "t.trace"
    trace.write_text("0 0x1000 R\n")
    proc = _run("replay", str(trace), "--memory", "sram-7nm")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "sram-7nm" in proc.stderr


def test_a_vector_unit_without_energy_per_op_is_charged_an_fp32_add_at_its_node(tmp_path):
    # Horowitz 2014: fp32 add 0.9 pJ at 45 nm; x 0.641 to 32 nm (Stillmaker & Baas)
    text = BASE.replace("compute:\n", "compute:\n  - {name: v, kind: vector, lanes: 8, clock: 1 GHz, buffer: s}\n")
    arch = Architecture.model_validate(yaml.safe_load(text.replace("technology_node: 7 nm", "technology_node: 32 nm")))
    assert arch.compute[0].energy_per_op == pytest.approx(0.9e-12 * 0.641)
    p = tmp_path / "a.yaml"
    p.write_text(text.replace("technology_node: 7 nm\n", "").replace(
        "  - {name: pe, kind: systolic, rows: 8, cols: 8, clock: 1 GHz, buffer: s}\n", ""))
    proc = _run("check", str(p))
    assert proc.returncode == 2 and "compute[0].energy_per_op" in proc.stderr


def test_a_variant_on_another_node_takes_that_nodes_table_energies():
    from dse.spec.variants import build_variant, canonical_doc

    tpu = load_architecture("tpu-v1-like")
    assert tpu.compute[0].energy_per_mac["int8"] == pytest.approx(0.3e-12 * 0.507)   # 28 nm
    at7 = build_variant(canonical_doc(tpu), {"technology_node": "7 nm"}).arch
    assert at7.compute[0].energy_per_mac["int8"] == pytest.approx(0.017e-12)           # 0.3 pJ x 0.0566
    assert at7.compute[1].energy_per_op == tpu.compute[1].energy_per_op               # typed in its YAML


def test_a_bad_technology_node_is_reported_on_the_node_not_on_the_energies(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text(BASE.replace("technology_node: 7 nm", "technology_node: -7 nm"))
    proc = _run("check", str(p))
    assert proc.returncode == 2 and "technology_node" in proc.stderr and "energy_per_mac" not in proc.stderr

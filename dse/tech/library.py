"""The technology library: named memory technologies from the sourced data tables.

``technology: hbm3`` on a memory tier fills every field the tier leaves out from
dse/tech/data/memories.yaml (per unit: a DIMM channel, an HBM stack...), and
``swap_memory`` rebuilds a design with another technology on its tiers.
"""
from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from dse.errors import SpecError
from dse.units import to_si


@lru_cache(maxsize=None)
def _table(name: str) -> dict[str, Any]:
    text = resources.files("dse.tech.data").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def memory_technologies() -> dict[str, dict[str, Any]]:
    """Raw entries of memories.yaml by name."""
    return _table("memories.yaml")["technologies"]


def technology(name: str) -> dict[str, Any]:
    """One technology entry, or a SpecError listing the known names."""
    techs = memory_technologies()
    if name not in techs:
        close = difflib.get_close_matches(name, techs, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise SpecError(f"unknown memory technology '{name}'{hint}; known: {', '.join(techs)}")
    return techs[name]


def _get(entry: dict, *path: str) -> Any:
    cur: Any = entry
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def tier_defaults(name: str) -> dict[str, Any]:
    """Memory-tier fields implied by a technology, per unit of the entry (SI floats).

    ``channels`` counts units (DIMM channels, HBM stacks); bandwidth is per unit.
    Fields the table does not source are left out, so the YAML must give them.
    """
    e = technology(name)
    out: dict[str, Any] = {}
    bw = _get(e, "peak_bandwidth") or _get(e, "read_bandwidth")
    if bw is not None:
        out["bandwidth_per_channel"] = to_si(bw, "bandwidth")
    if _get(e, "capacity") is not None:
        out["capacity"] = to_si(e["capacity"], "bytes")
    read_lat = _get(e, "read_latency")
    if read_lat is not None:
        out["latency"] = to_si(read_lat, "time")
    elif _get(e, "timing", "tRCD") is not None and _get(e, "timing", "tCL") is not None:
        out["latency"] = to_si(e["timing"]["tRCD"], "time") + to_si(e["timing"]["tCL"], "time")
    for key, field in (("read", "read_energy"), ("write", "write_energy")):
        v = _get(e, "energy", key)
        if v is not None:
            out[field] = to_si(v, "energy_per_bit")
    if _get(e, "background_power") is not None:
        out["background_power"] = to_si(e["background_power"], "power")
    return out


def swap_memory(arch, name: str, tier: str | None = None):
    """The same design with memory tier ``tier`` (default: where weights live) on technology ``name``.

    Capacity and unit count are kept; every technology-dependent field (bandwidth per
    unit, latency, energies, background power) comes from the library.
    """
    from dse.spec.architecture import Architecture

    target = tier or arch.tier_of("weights")
    if arch.memory_named(target) is None:
        target = arch.memories[0].name
    defaults = tier_defaults(name)
    data = arch.model_dump(mode="python", by_alias=True)
    # the tier takes the technology's name (so results say `bound: ddr5-4800`, not the old
    # name), unless another component already has it
    taken = {c.name for c in arch.components()} - {target}
    new_name = name if name not in taken else target
    data["placement"] = {r: (new_name if t == target else t) for r, t in data.get("placement", {}).items()}
    for pf in data.get("prefetch", []):
        for key in ("from", "to"):
            if pf[key] == target:
                pf[key] = new_name
    for m in data["memories"]:
        if m["name"] == target:
            keep = {"name": new_name, "capacity": m["capacity"], "channels": m["channels"],
                    "area": m["area"], "leakage": m["leakage"]}
            zeroed = {"read_energy": 0.0, "write_energy": 0.0, "background_power": 0.0, "latency": 0.0}
            scaled = {k: v for k, v in defaults.items() if k != "capacity"}
            if "background_power" in scaled:  # the library is per unit; the tier has `channels` units
                scaled["background_power"] *= m["channels"]
            m.clear()
            m.update({**zeroed, **scaled, **keep, "technology": name})
    data["name"] = f"{arch.name}+{name}"
    return Architecture.model_validate(data)


#: In-memory-compute "technologies" that `dse compare` accepts beside memory names.
IMC_TECHNOLOGIES = {"reram-imc": "reram-isaac"}


def add_imc(arch, workload, imc_technology: str = "reram-isaac"):
    """The same design plus an IMC tile with crossbars enough to hold every weight GEMM of ``workload``.

    Weights are taken as resident (programmed once, not charged per run): the
    comparison asks what compute-in-memory buys when weights never move. The
    crossbars' area and leakage come from the IMC data table and show in the totals.
    """
    from dse.sim.plan import crossbars_for  # the engine's mapping rule
    from dse.spec.architecture import Architecture
    from dse.tech.imc import CrossbarParams

    params = CrossbarParams.from_library(imc_technology)
    needed = 0
    held: set[str] = set()
    for op in workload.ops:
        if op.kind != "vector" and op.b_role == "weights" and op.weight_key not in held:
            held.add(op.weight_key)
            needed += crossbars_for(params, op)
    data = arch.model_dump(mode="python")
    buffer = next((u.get("buffer") for u in data["compute"] if u.get("buffer")), None)
    data["compute"].insert(0, {"name": "imc", "kind": "imc", "technology": imc_technology,
                               "overrides": {"crossbars": max(1, needed)}, "weights_resident": True,
                               "buffer": buffer})
    data["name"] = f"{arch.name}+{imc_technology}"
    return Architecture.model_validate(data)

"""The technology library: named memory technologies from the sourced data tables.

``technology: hbm3`` on a memory tier fills every field the tier leaves out from
dse/tech/data/memories.yaml (per unit: a DIMM channel, an HBM stack...); a design
with another technology on a tier is built by dse.spec.variants.
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


#: In-memory-compute "technologies" that `dse compare` accepts beside memory names.
IMC_TECHNOLOGIES = {"reram-imc": "reram-isaac"}

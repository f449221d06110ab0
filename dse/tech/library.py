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

from dse.diskcache import bundled_yaml
from dse.errors import SpecError
from dse.units import to_si


@lru_cache(maxsize=None)
def _table(name: str) -> dict[str, Any]:
    return bundled_yaml(resources.files("dse.tech.data").joinpath(name))


def memory_technologies() -> dict[str, dict[str, Any]]:
    """Raw entries of memories.yaml by name."""
    return _table("memories.yaml")["technologies"]


#: Short names accepted on the command line (``dse compare -m``, ``dse replay -m``) -> entries
#: of dse/tech/data/memories.yaml.
MEMORY_ALIASES = {"ddr4": "ddr4-3200", "ddr5": "ddr5-4800", "lpddr5": "lpddr5-6400", "hbm3": "hbm3",
                  "optane": "optane-pmem", "hbm2e": "hbm2e", "hbm3e": "hbm3e", "gddr6": "gddr6"}


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


#: The marker for a part of the energy that the entry's per-bit figure already contains
#: (a vendor device-power-per-bit total, a measured rail power): charged as 0 on its own.
INCLUDED = "included"

#: Where each energy figure lives in an entry, by the memory-tier field it fills.
ENERGY_FIELDS = {
    "read_energy": ("energy", "read"),
    "write_energy": ("energy", "write"),
    "activate_energy": ("energy", "activate"),
    "refresh_energy": ("energy", "refresh"),
    "background_power": ("background_power",),
}
_DIMENSION = {"read_energy": "energy_per_bit", "write_energy": "energy_per_bit",
              "activate_energy": "energy", "refresh_energy": "energy", "background_power": "power"}

#: Every memory-tier field that comes from a technology (a variant swapping the technology
#: drops them all so the library fills them again).
TECHNOLOGY_FIELDS = ("bandwidth_per_channel", "latency", *ENERGY_FIELDS)


def access_kinds(entry: dict) -> tuple[str, ...]:
    """The access kinds a technology must price: read and write always; row activation and
    refresh too where the DRAM model charges them (DRAM and HBM entries with timing)."""
    if entry.get("family") in ("dram", "hbm") and entry.get("timing"):
        return ("read", "write", "activate", "refresh")
    return ("read", "write")


def required_energy_fields(entry: dict) -> tuple[str, ...]:
    """Memory-tier fields a tier on this technology must end up with (from the library or its YAML)."""
    fields = {"read": "read_energy", "write": "write_energy", "activate": "activate_energy",
              "refresh": "refresh_energy"}
    return (*(fields[k] for k in access_kinds(entry)), "background_power")


def energy_figures(name: str) -> dict[str, float]:
    """The technology's sourced energy figures by tier field, SI (J/bit, J, W); INCLUDED -> 0.0.

    Fields the table does not source are left out, never zero-filled.
    """
    e = technology(name)
    out: dict[str, float] = {}
    for field, path in ENERGY_FIELDS.items():
        v = _get(e, *path)
        if v is None:
            continue
        out[field] = 0.0 if v == INCLUDED else to_si(v, _DIMENSION[field])
    return out


def energy_provenance(name: str) -> dict[str, str]:
    """For each energy figure of a technology: its sources (SOURCES.md keys) and, for a part
    that the per-bit figure contains, the word 'included'."""
    e = technology(name)
    sources = e.get("energy_sources") or {}
    out = {}
    for field, path in ENERGY_FIELDS.items():
        v = _get(e, *path)
        if v is None:
            continue
        key = path[-1]
        text = str(sources.get(key, ""))
        out[field] = f"included ({text})" if v == INCLUDED else text
    return out


def tier_defaults(name: str) -> dict[str, Any]:
    """Memory-tier fields implied by a technology, per unit of the entry (SI floats).

    ``channels`` counts units (DIMM channels, HBM stacks); bandwidth, background power and
    refresh energy are per unit. Fields the table does not source are left out, so the
    YAML must give them.
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
    out.update(energy_figures(name))
    return out


#: In-memory-compute "technologies" that `dse compare` accepts beside memory names.
IMC_TECHNOLOGIES = {"reram-imc": "reram-isaac"}

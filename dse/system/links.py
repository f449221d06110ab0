"""Link and switch presets: a sourced data table (dse/tech/data/links.yaml), read once.

A link is one direction-symmetric connection between two ports: ``bandwidth`` per
direction, ``latency`` per hop (the alpha of a collective step), ``energy_per_bit`` for
both ends together, ``static_power`` drawn whether or not it carries data.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

from dse.diskcache import bundled_yaml
from dse.errors import SpecError

LINK_FIELDS = ("kind", "bandwidth", "latency", "energy_per_bit", "static_power")
SWITCH_FIELDS = ("bandwidth", "latency", "energy_per_bit", "static_power")


@lru_cache(maxsize=1)
def _table() -> dict:
    return bundled_yaml(resources.files("dse.tech") / "data" / "links.yaml")


def link_presets() -> dict[str, dict]:
    """Every link preset by name, fields as written (unit strings), with description and sources."""
    return dict(_table()["links"])


def switch_presets() -> dict[str, dict]:
    return dict(_table()["switches"])


def _preset(kind: str, name: str, table: dict[str, dict]) -> dict:
    if name not in table:
        raise SpecError(f"unknown {kind} preset '{name}' (known: {', '.join(sorted(table))})")
    return table[name]


def link_preset(name: str) -> dict:
    """The fields of link preset ``name`` (unit strings); SpecError naming the known ones."""
    entry = _preset("link", name, link_presets())
    return {k: entry[k] for k in LINK_FIELDS if k in entry}


def switch_preset(name: str) -> dict:
    entry = _preset("switch", name, switch_presets())
    return {k: entry[k] for k in SWITCH_FIELDS if k in entry}

"""Design variants: the one place where a design is changed and rebuilt.

A variant is always rebuilt from a canonical document (the architecture file as
written, unit strings kept) plus edits, then validated, so that technology
defaults are applied *after* the edits: a tier given a new ``technology`` takes
that technology's bandwidth, latency, energies and background power, and a new
unit count (``channels``) rescales the per-unit capacity and background power.
The sweep, ``dse compare``, ``load_architecture(..., overrides=...)`` and the
``best/*.yaml`` files of a study all go through :func:`build_variant`, so the file
a user takes away is the design that was scored.
"""
from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import ValidationError

from dse.errors import SpecError
from dse.spec.architecture import Architecture
from dse.tech.library import TECHNOLOGY_FIELDS, tier_defaults

# TECHNOLOGY_FIELDS: memory-tier fields a technology fills (per unit; capacity and background
# power scale with ``channels``). An override of ``technology`` re-derives them unless it sets them too.


@dataclass(frozen=True)
class Variant:
    """A validated design and the document it was built from (what ``best/*.yaml`` holds)."""

    doc: dict
    arch: Architecture


# ---- dotted paths ('compute.mxu.rows', 'memories[0].channels') ---------------------
def split_path(path: str) -> list[str]:
    return [p for p in path.replace("[", ".").replace("]", "").split(".") if p]


def _child(node: Any, key: str) -> tuple[Any, Any]:
    """(container, key) for one step of a path; lists are addressed by name or index."""
    if isinstance(node, list):
        if key.isdigit() and int(key) < len(node):
            return node, int(key)
        for i, item in enumerate(node):
            if isinstance(item, dict) and item.get("name") == key:
                return node, i
        raise KeyError(key)
    if isinstance(node, dict):
        return node, key
    raise KeyError(key)


def field_paths(data: Any, prefix: str = "") -> list[str]:
    """Every settable dotted path in an architecture document (components by name)."""
    out: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (dict, list)):
                out.extend(field_paths(v, p))
            else:
                out.append(p)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            key = item.get("name", str(i)) if isinstance(item, dict) else str(i)
            out.extend(field_paths(item, f"{prefix}.{key}"))
    return out


def unknown_path_message(data: dict, path: str) -> str:
    valid = field_paths(data)
    close = difflib.get_close_matches(path, valid, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"'{path}' names no field of the architecture{hint}"


def _fields_of(parts: list[str], node: Any) -> set[str]:
    """Field names a component at this path may take (a field the document leaves out,
    such as one its technology fills, may still be set)."""
    from typing import get_args

    from dse.spec import architecture as A

    section = parts[0] if len(parts) > 2 else None
    if section is None:
        return set(A.Architecture.model_fields)
    if section == "compute":
        kinds = {cls.model_fields["kind"].annotation.__args__[0]: cls
                 for cls in get_args(get_args(A.ComputeUnit)[0])}
        cls = kinds.get(node.get("kind")) if isinstance(node, dict) else None
        return set(cls.model_fields) if cls else set()
    model = {"sram": A.Sram, "memories": A.MemoryTier, "static": A.StaticComponent}.get(section)
    return set(model.model_fields) if model else set()


def _set(doc: dict, path: str, value: Any) -> None:
    parts = split_path(path)
    node: Any = doc
    try:
        for key in parts[:-1]:
            container, k = _child(node, key)
            node = container[k]
        container, k = _child(node, parts[-1])
    except KeyError:
        raise SpecError(unknown_path_message(doc, path)) from None
    if isinstance(container, dict) and k not in container and k not in _fields_of(parts, container):
        known = sorted(_fields_of(parts, container))
        prefix = ".".join(parts[:-1])
        close = difflib.get_close_matches(k, known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(f'{prefix}.{c}' if prefix else c for c in close)}?)" if close else ""
        raise SpecError(f"'{path}' names no field of the architecture{hint}")
    container[k] = value


def _tier_index(doc: dict, name: str) -> int | None:
    for i, tier in enumerate(doc.get("memories") or []):
        if isinstance(tier, dict) and (tier.get("name") == name or str(i) == name):
            return i
    return None


# ---- the canonical document ------------------------------------------------------
def canonical_doc(arch: Architecture) -> dict:
    """The smallest document that rebuilds ``arch``: SI values, with every memory-tier field
    that its technology would fill left out (so edits re-derive them)."""
    doc = arch.model_dump(mode="python", by_alias=True)
    for tier, spec in zip(doc["memories"], arch.memories):
        if not spec.technology:
            continue
        defaults = tier_defaults(spec.technology)
        for key in ("capacity", "background_power"):
            if key in defaults:
                defaults[key] *= spec.channels
        for key, value in defaults.items():
            if tier.get(key) == value:
                tier.pop(key)
    _drop_table_energies(doc, arch)
    return doc


def _drop_table_energies(doc: dict, arch: Architecture) -> None:
    """Leave out SRAM energies its technology gives and MAC energies the compute table gives
    at the design's node, so an edit of the technology or the node re-derives them."""
    from dse.errors import DseError
    from dse.tech.compute import mac_energy

    for entry, spec in zip(doc.get("sram") or [], arch.sram):
        if spec.technology:
            defaults = tier_defaults(spec.technology)
            for key in ("read_energy", "write_energy"):
                if key in defaults and entry.get(key) == defaults[key]:
                    entry.pop(key)
    if arch.technology_node is None:
        return
    from dse.tech.compute import vector_op_energy

    try:
        per_op = vector_op_energy(arch.technology_node)[0]
    except DseError:
        per_op = None
    for entry in doc.get("compute") or []:
        if entry.get("kind") == "vector" and per_op is not None and entry.get("energy_per_op") == per_op:
            entry.pop("energy_per_op")
        energies = entry.get("energy_per_mac") if entry.get("kind") == "systolic" else None
        for p, value in list((energies or {}).items()):
            try:
                if value == mac_energy(arch.technology_node, p)[0]:
                    energies.pop(p)
            except DseError:
                continue


def apply_edits(doc: dict, overrides: Mapping[str, Any]) -> dict:
    """A copy of ``doc`` with each dotted path set. A tier given a new ``technology``
    drops the technology fields the document states (unless the overrides set them), so
    the new technology fills them; capacity and unit count are kept."""
    out = copy.deepcopy(doc)
    for path, value in overrides.items():
        parts = split_path(path)
        if len(parts) == 3 and parts[0] == "memories" and parts[2] == "technology":
            i = _tier_index(out, parts[1])
            tier = out["memories"][i] if i is not None else None
            if isinstance(tier, dict) and tier.get("technology") != value:
                name = tier.get("name", parts[1])
                for f in TECHNOLOGY_FIELDS:
                    if f"memories.{name}.{f}" not in overrides and f"memories.{parts[1]}.{f}" not in overrides:
                        tier.pop(f, None)
    for path, value in overrides.items():
        _set(out, path, value)
    return out


def validate(doc: dict, *, where: str | None = None) -> Architecture:
    """Validate a document; one SpecError line naming the field on failure."""
    if not isinstance(doc, dict):
        raise SpecError("expected a mapping of architecture fields at the top level", where=where)
    try:
        return Architecture.model_validate(doc)
    except ValidationError as exc:
        from dse.spec.yaml_io import YamlDoc, spec_error_from_validation

        # the same line as a file's error (compute[0].cols: ...), without a line to point at
        raise spec_error_from_validation(exc, YamlDoc(doc, {}, where), Architecture) from None


def build_variant(doc: dict, overrides: Mapping[str, Any] | None = None) -> Variant:
    """The design ``doc`` with ``overrides`` (dotted path -> value) applied, validated."""
    edited = apply_edits(doc, overrides or {})
    return Variant(edited, validate(edited))


# ---- structural edits (a whole tier or unit) -------------------------------------
def swap_memory(doc: dict, technology: str, tier: str) -> dict:
    """``doc`` with memory tier ``tier`` on ``technology``: capacity, unit count, area and
    leakage kept, every technology field from the library. The tier takes the technology's
    name (results then say ``bound: ddr5-4800``) unless another component has it."""
    out = copy.deepcopy(doc)
    taken = {c.get("name") for key in ("compute", "sram", "memories", "static") for c in out.get(key) or []}
    new_name = technology if technology not in taken - {tier} else tier
    out["placement"] = {r: (new_name if t == tier else t) for r, t in (out.get("placement") or {}).items()}
    for pf in out.get("prefetch") or []:
        for key in ("from", "to"):
            if pf.get(key) == tier:
                pf[key] = new_name
    for m in out["memories"]:
        if m.get("name") == tier:
            keep = {k: m[k] for k in ("capacity", "channels", "area", "leakage") if k in m}
            if "capacity" not in keep and m.get("technology"):  # the old technology's capacity per unit
                per_unit = tier_defaults(m["technology"]).get("capacity")
                if per_unit is not None:
                    keep["capacity"] = per_unit * m.get("channels", 1)
            m.clear()
            m.update({"name": new_name, "technology": technology, **keep})
    out["name"] = f"{doc.get('name')}+{technology}"
    return out


def add_unit(doc: dict, unit: dict, *, suffix: str) -> dict:
    """``doc`` with compute unit ``unit`` inserted first (preferred by the mapper)."""
    out = copy.deepcopy(doc)
    out["compute"] = [unit, *out.get("compute", [])]
    out["name"] = f"{doc.get('name')}+{suffix}"
    return out

"""A resolved architecture rendered in SI units, for `dse check`."""
from __future__ import annotations

from rich.markup import escape
from rich.tree import Tree

from math import isclose

from dse.errors import printable
from dse.spec.architecture import Architecture, MemoryTier, Sram, SystolicArray, VectorUnit
from dse.spec.quantities import field_dimension
from dse.units import fmt
from dse.datatypes import ROLES

def _safe(v) -> str:
    """Text from the input file, shown as itself (no markup, no control characters)."""
    return escape(printable(str(v)))


def _value(model: type, key: str, v) -> str:
    dim = field_dimension(model, key)
    if isinstance(v, float) and dim:
        return f"{v:.6g}  ({fmt(v, dim)})"
    if isinstance(v, dict) and key == "energy_per_mac":
        return ", ".join(f"{_safe(p)}: {e:.4g} J ({fmt(e, 'energy')})" for p, e in v.items())
    return _safe(v)


def energy_sources(c, node_m: float | None = None) -> dict[str, str]:
    """Where each energy figure of a component came from: its technology's sources, the
    compute table, or the YAML."""
    from dse.errors import DseError

    out: dict[str, str] = {}
    if isinstance(c, (MemoryTier, Sram)):
        fields = c.energy_fields() if isinstance(c, MemoryTier) else ("read_energy", "write_energy")
        lib, prov = {}, {}
        if c.technology:
            from dse.tech.library import energy_provenance, tier_defaults

            lib, prov = tier_defaults(c.technology), energy_provenance(c.technology)
            if "background_power" in lib and isinstance(c, MemoryTier):
                lib["background_power"] *= c.channels
        for f in fields:
            v = getattr(c, f)
            if f in lib and isclose(v, lib[f], rel_tol=1e-9, abs_tol=0.0):
                out[f] = f"{fmt(v, _DIMS[f])} from {c.technology}: {prov.get(f) or 'memories.yaml'}"
            else:
                out[f] = f"{fmt(v, _DIMS[f])} from the YAML"
    elif isinstance(c, VectorUnit):
        from dse.tech.compute import vector_op_energy

        try:
            table = vector_op_energy(node_m) if node_m else None
        except DseError:
            table = None
        origin = (f"the compute table: {table[1]}" if table and isclose(c.energy_per_op, table[0], rel_tol=1e-9)
                  else "the YAML")
        out["energy_per_op"] = f"{fmt(c.energy_per_op, 'energy')} from {origin}"
    elif isinstance(c, SystolicArray):
        from dse.tech.compute import mac_energy

        for p, v in c.energy_per_mac.items():
            try:
                table = mac_energy(node_m, p) if node_m else None
            except DseError:
                table = None
            if table and isclose(v, table[0], rel_tol=1e-9):
                out[f"energy_per_mac.{p}"] = f"{fmt(v, 'energy')} from the compute table: {table[1]}"
            else:
                out[f"energy_per_mac.{p}"] = f"{fmt(v, 'energy')} from the YAML"
    return out


_DIMS = {"read_energy": "energy_per_bit", "write_energy": "energy_per_bit", "activate_energy": "energy",
         "refresh_energy": "energy", "background_power": "power"}


def describe(arch: Architecture) -> Tree:
    tree = Tree(f"[bold]{_safe(arch.name)}[/]  area {arch.area_mm2:.1f} mm², static power {arch.static_power_w:.2f} W")
    tree.add("[dim]numbers in SI units (s, Hz, B, B/s, J, J/bit, W, m; areas in mm²): a plain number "
             "in the file is read in these units, so write the unit ('24 MiB', '819 GB/s')[/]")
    for key in ("technology_node", "tdp"):
        v = getattr(arch, key)
        if v is not None:
            tree.add(f"{key}: {_value(Architecture, key, v)}")
    for title, items in (("compute", arch.compute), ("sram", arch.sram), ("memories", arch.memories),
                         ("static", arch.static)):
        if not items:
            continue
        branch = tree.add(f"[bold]{title}[/]")
        for c in items:
            node = branch.add(f"[cyan]{_safe(c.name)}[/]")
            for k, v in c.model_dump(exclude={"name"}).items():
                if v is not None and v != {}:
                    node.add(f"{k}: {_value(type(c), k, v)}")
            if title == "compute" and c.precisions:
                node.add("peak: " + ", ".join(f"{p} {c.peak_ops(p) / 1e12:.4g} TOPS" for p in c.precisions))
            elif title == "compute" and c.kind == "imc":  # its rate follows the bits of a layer's precision
                node.add("peak: " + ", ".join(f"{p} {c.peak_ops(p) / 1e12:.4g} TOPS" for p in ("int8", "fp16")))
            elif title == "compute":
                node.add(f"peak: {c.peak_ops() / 1e9:.4g} GOPS")
            elif title == "memories":
                node.add(f"bandwidth: {c.bandwidth:.6g}  ({fmt(c.bandwidth, 'bandwidth')})")
            sources = energy_sources(c, arch.technology_node)
            if sources:
                branch_e = node.add("energy (per access kind, with its source)")
                for k, text in sources.items():
                    branch_e.add(_safe(f"{k}: {text}"))
    placement = tree.add("[bold]placement[/]")
    for role in ROLES:
        placement.add(f"{role}: {_safe(arch.tier_of(role))}")
    return tree

"""A resolved architecture rendered in SI units, for `dse check`."""
from __future__ import annotations

from rich.tree import Tree

from dse.spec.architecture import Architecture
from dse.spec.quantities import field_dimension
from dse.units import fmt
from dse.workloads.ops import ROLES

def _value(model: type, key: str, v) -> str:
    dim = field_dimension(model, key)
    if isinstance(v, float) and dim:
        return f"{v:.6g}  ({fmt(v, dim)})"
    if isinstance(v, dict) and key == "energy_per_mac":
        return ", ".join(f"{p}: {e:.4g} J ({fmt(e, 'energy')})" for p, e in v.items())
    return str(v)


def describe(arch: Architecture) -> Tree:
    tree = Tree(f"[bold]{arch.name}[/]  area {arch.area_mm2:.1f} mm², static power {arch.static_power_w:.2f} W")
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
            node = branch.add(f"[cyan]{c.name}[/]")
            for k, v in c.model_dump(exclude={"name"}).items():
                if v is not None and v != {}:
                    node.add(f"{k}: {_value(type(c), k, v)}")
            if title == "compute" and c.precisions:
                node.add("peak: " + ", ".join(f"{p} {c.peak_ops(p) / 1e12:.4g} TOPS" for p in c.precisions))
            elif title == "compute":
                node.add(f"peak: {c.peak_ops() / 1e9:.4g} GOPS")
            elif title == "memories":
                node.add(f"bandwidth: {c.bandwidth:.6g}  ({fmt(c.bandwidth, 'bandwidth')})")
    placement = tree.add("[bold]placement[/]")
    for role in ROLES:
        placement.add(f"{role}: {arch.tier_of(role)}")
    return tree

"""Energy per MAC from the sourced compute table (dse/tech/data/compute.yaml).

Horowitz (ISSCC 2014) gives 45 nm operation energies; Stillmaker & Baas (2017) scale them
to other nodes. A design states its ``technology_node`` and the precisions its arrays run,
and the energy of one MAC comes from here instead of a hand-typed number.
"""
from __future__ import annotations

from dse.errors import SpecError
from dse.tech.library import _table
from dse.units import to_si


def _node_key(node_m: float) -> str:
    return f"{round(node_m * 1e9)}nm"


def mac_energy(node_m: float, precision: str) -> tuple[float, str]:
    """(J per MAC, source text) at a process node (metres) and precision, or a SpecError
    saying which of the two the table lacks and what it has."""
    table = _table("compute.yaml")
    rows = table["mac_by_precision"]
    if precision not in rows:
        raise SpecError(f"the compute table has no {precision} MAC (it has: {', '.join(rows)}); "
                        f"give energy_per_mac.{precision}")
    row, source = rows[precision]["row"], rows[precision]["source"]
    node = _node_key(node_m)
    macs = table["mac"]
    if node in macs and row in macs[node]:
        return to_si(macs[node][row]["energy"], "energy"), f"{source}, {node} (compute.yaml mac.{node}.{row})"
    factors = table["scaling"]["energy_factor_from_45nm"]
    if node in factors:
        energy = to_si(macs["45nm"][row]["energy"], "energy") * float(factors[node])
        return energy, (f"{source} x StillmakerBaas17 45->{node.removesuffix('nm')} nm factor "
                        f"{factors[node]} (compute.yaml)")
    known = sorted({*macs, *factors}, key=lambda k: float(k.removesuffix("nm")))
    raise SpecError(f"the compute table has no MAC energies at {node} (it has: {', '.join(known)}); "
                    f"give energy_per_mac.{precision}")

"""Energy per MAC (and per vector op) from the sourced compute table (dse/tech/data/compute.yaml).

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


def _at_node(section: str, row: str, node_m: float, source: str, what: str) -> tuple[float, str]:
    """(J, source) of ``row`` of ``section`` ("mac" or "ops") at a node: the node's own row,
    else the 45 nm row x the Stillmaker & Baas factor; a SpecError naming ``what`` otherwise."""
    table = _table("compute.yaml")
    node = _node_key(node_m)
    rows = table[section]
    if node in rows and row in rows[node]:
        return to_si(rows[node][row]["energy"], "energy"), f"{source}, {node} (compute.yaml {section}.{node}.{row})"
    factors = table["scaling"]["energy_factor_from_45nm"]
    if node in factors:
        energy = to_si(rows["45nm"][row]["energy"], "energy") * float(factors[node])
        return energy, (f"{source} x StillmakerBaas17 45->{node.removesuffix('nm')} nm factor "
                        f"{factors[node]} (compute.yaml)")
    known = sorted({*rows, *factors}, key=lambda k: float(k.removesuffix("nm")))
    raise SpecError(f"the compute table has no energies at {node} (it has: {', '.join(known)}); give {what}")


def mac_energy(node_m: float, precision: str) -> tuple[float, str]:
    """(J per MAC, source text) at a process node (metres) and precision, or a SpecError
    saying which of the two the table lacks and what it has."""
    rows = _table("compute.yaml")["mac_by_precision"]
    if precision not in rows:
        raise SpecError(f"the compute table has no {precision} MAC (it has: {', '.join(rows)}); "
                        f"give energy_per_mac.{precision}")
    return _at_node("mac", rows[precision]["row"], node_m, rows[precision]["source"],
                    f"energy_per_mac.{precision}")


def vector_op_energy(node_m: float) -> tuple[float, str]:
    """(J per vector op, source text) at a process node: the table's `vector_op` row (a PROXY)."""
    spec = _table("compute.yaml")["vector_op"]
    return _at_node("ops", spec["row"], node_m, spec["source"], "energy_per_op")

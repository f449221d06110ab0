"""The unit of every result column, and values written for people (``1.19 GHz``, ``12 MiB``).

Tables keep SI floats; a column's unit comes from its name (``latency_s``,
``energy_<part>_j``, ``bytes_read_<tier>``, ``busy_<unit>``) or, for a searched
``param_<path>`` column, from the dimension of the architecture field it sets.
Units are written as Pint reads them (``s``, ``J``, ``B/s``, ``mm**2``), so a
program can check them; ``1`` is a pure number and ``""`` a text column.
"""
from __future__ import annotations

import math

from dse.humanize import DIMENSION_UNITS, human  # noqa: F401  (re-exported: tables' units and cells)

#: Columns of text or flags: no unit.
TEXT_COLUMNS = {"trial", "workload", "state", "feasible", "pareto_rank", "error", "bound", "architecture",
                "duplicate_of", "technology", "memory", "workload_spec", "as_designed", "memory_energy_sourced",
                "imc_op_names", "op", "kind", "unit", "precision", "resource", "name", "tag"}
_EXACT = {
    "throughput_ops_per_s": "op/s", "throughput_samples_per_s": "sample/s", "tops_per_w": "TOPS/W",
    "total_ops": "op", "macs": "MAC", "ops": "op", "vector_ops": "op", "samples": "sample", "sim_events": "1",
    "n_tiles": "1", "memory_energy_share": "1", "imc_ops": "1", "weight_ops": "1", "imc_latency_share": "1",
    "capacity_margin_bytes": "B", "arithmetic_intensity": "op/B", "memory_bandwidth_b_per_s": "B/s",
    # a system's switches: energy of the bits crossing each (per bit x hops); with the
    # link_<type>_energy_j columns and comm_static_energy_j they make up comm_energy_j
    "switch_energy_j": "J", "intra_switch_energy_j": "J", "inter_switch_energy_j": "J",
}
_SUFFIXES = (("_b_per_s", "B/s"), ("_bps", "B/s"), ("_per_s", "1/s"), ("_per_j", "1/J"), ("_bytes", "B"),
             ("_mm2", "mm**2"), ("_hz", "Hz"), ("_s", "s"), ("_j", "J"), ("_w", "W"))


def metric_unit(column: str) -> str | None:
    """The unit of a metric column from its name (None: the name does not say)."""
    if column in TEXT_COLUMNS:
        return ""
    if column in _EXACT:
        return _EXACT[column]
    if column.startswith("busy_"):
        return "1"
    if column.startswith(("bytes_", "peak_bytes_")):
        return "B"
    for suffix, unit in _SUFFIXES:
        if column.endswith(suffix):
            return unit
    return None


def param_unit(arch, path: str, value=None) -> str:
    """The unit of the design field at dotted ``path`` ('1' for a plain number, '' for text)."""
    from dse.spec.quantities import dimension_at

    dim = dimension_at(arch, path)
    if dim is not None:
        return DIMENSION_UNITS[dim]
    if isinstance(value, str):
        return ""
    return "1"


def human_column(column: str, value, unit: str | None = None) -> str:
    """A cell of ``column``: its unit from the name unless given."""
    return human(value, unit if unit is not None else metric_unit(column))

"""Systems in studies: a study's ``architecture:`` may name a system file; its parameters
are then dotted paths into the system (``chips.0.count``, ``parallelism.data``,
``links.net.preset``, ``topology.shape``), and every trial simulates one training step.

These are the hooks ``dse.search`` calls where it would build or simulate one chip.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from dse import results as R
from dse.errors import DesignError, SpecError
from dse.system.spec import ParallelismSpec, SystemSpec, apply_paths, is_system_doc
from dse.system.topology import Topology

__all__ = ["is_system_doc", "system_spec", "system_variant", "system_doc", "metric_names",
           "capacity_margin", "simulate"]


def system_doc(base_raw: dict, overrides: dict[str, Any]) -> dict:
    """The system file as written with the trial's values set (what best/*.yaml holds)."""
    return apply_paths(base_raw, overrides)


def system_spec(doc: dict, where: str | None = None) -> SystemSpec:
    try:
        return SystemSpec.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if msg.startswith("\x00at:"):
            path, msg = msg[4:].split("\x00", 1)
            loc = f"{loc}.{path}" if loc else path
        raise SpecError(msg, where=where, field=loc or None) from None


def system_variant(base_raw: dict, overrides: dict[str, Any]):
    """The trial's System (chips loaded, topology built)."""
    from dse.system.simulate import build_system

    return build_system(system_spec(system_doc(base_raw, overrides)))


def metric_names(spec: SystemSpec) -> list[str]:
    names = list(R.CORE_METRICS) + list(R.SYSTEM_METRICS) + [
        "total_ops", "samples", "chips", "comm_share", "comm_bytes", "comm_static_energy_j",
        "compute_energy_j", "pipeline_bubble", "memory_weights_bytes", "memory_gradients_bytes",
        "memory_optimizer_bytes", "memory_activations_bytes", "capacity_margin_bytes"]
    for name in spec.links:
        names += [R.link_col(name, w) for w in ("utilisation", "bytes", "energy_j")]
    names += [R.switch_col(name) for name in Topology(spec).switches()]
    return sorted(set(names))


def _parallelism(system) -> ParallelismSpec:
    return system.spec.parallelism or ParallelismSpec(data=system.chips)


def capacity_margin(system, workload) -> float:
    """Bytes the fullest chip needs beyond its memory (<= 0: fits), under the sharding."""
    from dse.system.simulate import memory_plan

    try:
        _, margin = memory_plan(system, workload, _parallelism(system))
    except DesignError:
        return float("nan")
    return margin


def simulate(system, workload) -> dict:
    from dse.system.simulate import simulate_system

    row = dict(simulate_system(system, workload, _parallelism(system)).summary_row)
    row["capacity_margin_bytes"] = capacity_margin(system, workload)
    return row

"""Kind ``workload``: simulate a workload on an architecture and compare one summary metric.

Metrics are the summary columns of ``simulate()`` (``results.py`` names) plus
``offchip_bytes_per_mac`` (bytes read and written on every off-chip tier per MAC, for
published DRAM-access counts). ``exclude_energy`` lists energy columns that lie outside
the measured boundary (a chip's power measured without its DRAM): they are subtracted
before ``energy_j``, ``energy_per_sample_j`` or ``avg_power_w`` is compared.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from dse.errors import SpecError
from dse.validate.case import CaseBase

_ENERGY_METRICS = ("energy_j", "energy_per_sample_j", "avg_power_w")


class Case(CaseBase):
    """A workload run on an architecture (bundled name or a file beside the case)."""

    METRICS = {
        "latency_s": "time",
        "throughput_ops_per_s": "compute_rate",
        "throughput_samples_per_s": "samples/s",
        "energy_j": "energy",
        "energy_per_sample_j": "energy",
        "avg_power_w": "power",
        "offchip_bytes_per_mac": "B/MAC",
    }

    kind: Literal["workload"]
    architecture: str = Field(min_length=1)
    overrides: dict[str, Any] = {}
    workload: str = Field(min_length=1, description="generator spec (name:k=v,...) or a trace file")
    batch: int | None = Field(default=None, gt=0)
    precision: str | None = None
    exclude_energy: list[str] = []


def _resolve(ref: str, base: Path) -> str:
    """A file beside the case if there is one, else the reference as given (a bundled name, a spec)."""
    p = base / ref
    return str(p) if p.suffix in (".yaml", ".yml", ".json", ".onnx") and p.exists() else ref


def evaluate(case: Case, base: Path) -> float:
    from dse.sim.engine import simulate
    from dse.spec.loader import load_architecture
    from dse.workloads import load_workload

    arch = load_architecture(_resolve(case.architecture, base), overrides=case.overrides or None)
    wl = load_workload(_resolve(case.workload, base), batch=case.batch, precision=case.precision)
    row = simulate(arch, wl).summary_row
    if case.metric == "offchip_bytes_per_mac":
        moved = sum(v for k, v in row.items() if k.startswith(("bytes_read_", "bytes_written_")))
        return moved / row["macs"]
    if case.metric in _ENERGY_METRICS and case.exclude_energy:
        missing = [k for k in case.exclude_energy if k not in row]
        if missing:
            have = ", ".join(k for k in row if k.startswith("energy_") and k.endswith("_j"))
            raise SpecError(f"exclude_energy: no column '{missing[0]}' in the summary (have {have})",
                            field=f"{case.name}.exclude_energy")
        excluded = sum(row[k] for k in case.exclude_energy)
        if excluded >= row["energy_j"]:
            raise SpecError(f"exclude_energy removes {excluded:.4g} J of the run's {row['energy_j']:.4g} J "
                            "(do the columns overlap? a tier's energy column includes its background)",
                            field=f"{case.name}.exclude_energy")
        energy = row["energy_j"] - excluded
        if case.metric == "energy_j":
            return energy
        if case.metric == "energy_per_sample_j":
            return energy / row["samples"]
        return energy / row["latency_s"]
    return float(row[case.metric])

"""`dse compare`: one design with its main memory swapped for each technology, every
workload on every technology. Each variant is built by the one variant builder
(dse/spec/variants.py) and simulated; the table and the report are written by
dse/report/compare.py, which never simulates.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dse import results as R
from dse.errors import DesignError, SpecError
from dse.report.compare import write_compare

from dse.tech.library import MEMORY_ALIASES  # short names, shared with `dse replay -m`
#: Short workload names -> workload specs.
WORKLOAD_ALIASES = {"gpt-decode": "gpt:phase=decode", "gpt-prefill": "gpt:phase=prefill",
                    "bert": "bert-base"}

def _usable_technologies() -> dict[str, dict]:
    """Library technologies that define a memory tier's bandwidth (cell-level entries do not)."""
    from dse.tech.library import memory_technologies, tier_defaults

    return {n: tier_defaults(n) for n in memory_technologies()
            if "bandwidth_per_channel" in tier_defaults(n)}


def resolve_memory(name: str) -> str:
    """The library name for ``name`` (or an alias), or one SpecError line listing what is known."""
    from dse.tech.library import IMC_TECHNOLOGIES

    if name in IMC_TECHNOLOGIES:
        return name
    usable = _usable_technologies()
    full = MEMORY_ALIASES.get(name, name)
    if full in usable:
        return full
    aliases = ", ".join(f"{a} ({t})" for a, t in MEMORY_ALIASES.items() if t in usable)
    from dse.tech.library import memory_technologies

    if full in memory_technologies():
        why = "has only cell-level figures (no tier bandwidth) and cannot replace a memory tier"
    else:
        why = "is not in the technology library"
    raise SpecError(f"memory technology '{name}' {why}; known: {', '.join(usable)}, "
                    f"{', '.join(IMC_TECHNOLOGIES)}; aliases: {aliases}",
                    field="--memory")


def resolve_workload(name: str) -> str:
    return WORKLOAD_ALIASES.get(name, name)


#: Name of the crossbar tile that `imc_variant` adds to the design.
IMC_UNIT = "imc"


def imc_placement(ops: pd.DataFrame, unit: str) -> dict:
    """Which weight layers the crossbars ran: counts and names, for the table and the report."""
    weight_ops = ops[ops["kind"] != "vector"] if "kind" in ops else ops
    on = weight_ops[weight_ops["unit"] == unit]
    return {"imc_ops": int(len(on)), "weight_ops": int(len(weight_ops)),
            "imc_op_names": ", ".join(map(str, on["op"])),
            "imc_latency_share": float(on["latency_s"].sum() / ops["latency_s"].sum())
            if len(ops) and ops["latency_s"].sum() > 0 else 0.0}


def memory_energy_j(row: dict, tiers: list[str]) -> float:
    """Energy spent in the off-chip memory tiers (dynamic plus background) of one summary row."""
    return sum(row.get(R.energy_col(t), 0.0) for t in tiers)


def compare(arch, memories: list[str], workloads: list[str], out_dir: str | Path | None) -> pd.DataFrame:
    """Simulate every workload on ``arch`` with its weights' memory tier on each technology.

    Returns one row per (technology, workload) with the summary metrics, the memory
    tier's share of energy and whether the library sources that technology's energy.
    Writes compare.parquet/.csv/.json and report.html/.md to ``out_dir`` when given.
    """
    from dse.sim.engine import simulate
    from dse.spec.loader import load_architecture
    from dse.spec.variants import build_variant, canonical_doc, swap_memory
    from dse.tech.library import IMC_TECHNOLOGIES, technology
    from dse.workloads import load_workload

    if not memories:
        raise SpecError("give at least one memory technology", field="--memory")
    if not workloads:
        raise SpecError("give at least one workload", field="--workload")
    base = load_architecture(arch)
    doc = canonical_doc(base)
    techs = [(m, resolve_memory(m)) for m in memories]          # every name checked before any run
    specs = [(w, resolve_workload(w)) for w in workloads]
    loaded = [(label, spec, load_workload(spec)) for label, spec in specs]
    tier = base.tier_of("weights") if base.memory_named(base.tier_of("weights")) else base.memories[0].name
    tier_index = [m.name for m in base.memories].index(tier)  # a swapped tier takes its technology's name
    rows = []
    for label, full in techs:
        imc = full in IMC_TECHNOLOGIES
        as_designed = not imc and base.memory_named(tier).technology == full
        # the tier the design already has keeps its own cited values (the library may source fewer)
        design = base if (as_designed or imc) else build_variant(swap_memory(doc, full, tier)).arch
        entry = {} if imc else technology(full)
        sourced = imc or as_designed or all((entry.get("energy") or {}).get(k) is not None
                                            for k in ("read", "write"))
        tiers = [m.name for m in design.memories]
        for wl_label, spec, workload in loaded:
            if imc:  # weights held in crossbars sized for this workload; memory tier as designed
                design = build_variant(imc_variant(doc, workload, IMC_TECHNOLOGIES[full])).arch
            row = {"technology": label, "memory": full, "workload": wl_label, "workload_spec": spec,
                   "architecture": design.name, "as_designed": as_designed, "memory_energy_sourced": sourced,
                   "memory_bandwidth_b_per_s": design.memories[tier_index].bandwidth, "error": None}
            try:
                result = simulate(design, workload)
                summary = result.summary_row
            except DesignError as exc:
                row["error"] = str(exc)
                rows.append(row)
                continue
            if imc:
                row.update(imc_placement(result.ops, IMC_UNIT))
            summary = {k: v for k, v in summary.items() if k not in ("architecture", "workload")}
            mem = memory_energy_j(summary, tiers)
            row.update(summary)
            row["memory_energy_j"] = mem
            row["memory_energy_share"] = mem / summary[R.ENERGY] if summary[R.ENERGY] else float("nan")
            rows.append(row)
    df = pd.DataFrame(rows)
    if out_dir is not None:
        meta = {"architecture": base.name, "tier": tier, "memories": dict(techs), "workloads": dict(specs)}
        write_compare(df, meta, Path(out_dir))
    return df


def imc_variant(doc: dict, workload, imc_technology: str = "reram-isaac") -> dict:
    """``doc`` plus an IMC tile with crossbars enough to hold every weight GEMM of ``workload``.

    Weights are taken as resident (programmed once, not charged per run): the comparison
    asks what compute-in-memory buys when weights never move. The crossbars' area and
    leakage come from the IMC data table and show in the totals.

    A layer runs on the crossbars only where they finish it sooner than the design's own
    units would, weight traffic included (``use: faster``); every other layer stays digital.
    Sending every weight layer to the crossbars (``use: always``) makes a GPU-class design
    slower than itself without them (one ISAAC-style tile against 132 SMs), which says
    nothing about the memory technology the comparison is about.
    """
    from dse.spec.variants import add_unit
    from dse.tech.imc import CrossbarParams, crossbars_for

    params = CrossbarParams.from_library(imc_technology)
    needed = 0
    held: set[str] = set()
    for op in workload.ops:
        if op.kind != "vector" and op.b_role == "weights" and op.weight_key not in held:
            held.add(op.weight_key)
            m, n, k, reps = op.gemm()
            needed += crossbars_for(params, m, n, k, reps, weight_bits=int(8 * op.elem_bytes))
    buffer = next((u.get("buffer") for u in doc["compute"] if u.get("buffer")), None)
    unit = {"name": "imc", "kind": "imc", "technology": imc_technology,
            "overrides": {"crossbars": max(1, needed)}, "weights_resident": True, "use": "faster",
            "buffer": buffer}
    return add_unit(doc, unit, suffix=imc_technology)

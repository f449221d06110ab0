"""`dse compare`: one design with its main memory swapped for each technology, every
workload on every technology; a table, and a report drawn from that table.

The table (compare.parquet / .csv) is the record: ``compare_report`` reads it and
never simulates.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dse import results as R
from dse.errors import DesignError, SpecError
from dse.report.model import Figure, Report, Section, Table, fmt, plot_data

#: Short names accepted on the command line -> entries of dse/tech/data/memories.yaml.
MEMORY_ALIASES = {"ddr4": "ddr4-3200", "ddr5": "ddr5-4800", "lpddr5": "lpddr5-6400", "hbm3": "hbm3",
                  "optane": "optane-pmem", "hbm2e": "hbm2e", "hbm3e": "hbm3e", "gddr6": "gddr6"}
#: Short workload names -> workload specs.
WORKLOAD_ALIASES = {"gpt-decode": "gpt:phase=decode", "gpt-prefill": "gpt:phase=prefill",
                    "bert": "bert-base"}
#: Columns of the printed table (and the report's), in order.
TABLE_COLUMNS = [R.THROUGHPUT_SAMPLES, R.ENERGY_PER_SAMPLE, R.AVG_POWER, R.TOPS_PER_W, "memory_energy_share"]


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


def write_compare(df: pd.DataFrame, meta: dict, out_dir: Path) -> Path:
    """compare.parquet, compare.csv, compare.json and the report; returns the HTML path."""
    from dse.report.html import write_html
    from dse.report.markdown import write_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out_dir / "compare.parquet", index=False)
    df.to_csv(out_dir / "compare.csv", index=False)
    (out_dir / "compare.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    rep = compare_report(df, meta)
    html = write_html(rep, out_dir / "report.html")
    write_markdown(rep, out_dir / "report.md")
    return html


def read_compare(path: Path) -> tuple[pd.DataFrame, dict]:
    """The table and metadata a `dse compare` run wrote."""
    df = pd.read_parquet(path / "compare.parquet") if (path / "compare.parquet").is_file() \
        else pd.read_csv(path / "compare.csv")
    meta_file = path / "compare.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    return df, meta


def compare_report(df: pd.DataFrame, meta: dict) -> Report:
    """Grouped bars per metric, a heatmap of TOPS/W and the table, from a compare table."""
    from dse.report import figures

    arch = meta.get("architecture") or (df["architecture"].iloc[0] if len(df) else "?")
    rep = Report(title=f"Memory technologies on {arch}",
                 subtitle="The same design with the memory tier holding the weights swapped for each technology "
                          "(bandwidth per unit, latency, energies and background power from the sourced library; "
                          "capacity and unit count kept).")
    techs = meta.get("memories") or dict(zip(df["technology"], df["memory"]))
    wls = meta.get("workloads") or dict(zip(df["workload"], df["workload_spec"]))
    kept = sorted(set(df.loc[df["as_designed"].astype(bool), "technology"])) if "as_designed" in df else []
    rep.facts = [("design", str(arch)), ("memory tier swapped", str(meta.get("tier", "–"))),
                 ("technologies", ", ".join(f"{a} = {t}" if a != t else a for a, t in techs.items())),
                 ("kept as designed", ", ".join(kept) + " (the design's own tier and its cited values)"
                  if kept else "none"),
                 ("workloads", ", ".join(f"{a} = {s}" if a != s else a for a, s in wls.items()))]
    unsourced = sorted(set(df.loc[~df["memory_energy_sourced"].astype(bool), "technology"])) if len(df) else []
    if unsourced:
        rep.notes.append(f"the library has no sourced read/write energy for {', '.join(unsourced)}: their memory "
                         f"energy counts background power only, so their energy share and TOPS/W are optimistic")
    failed = df[df["error"].notna()] if "error" in df else df.head(0)
    for _, r in failed.iterrows():
        rep.notes.append(f"{r['technology']} × {r['workload']}: {r['error']}")
    ok = df[df["error"].isna()] if "error" in df else df
    imc_sec = imc_section(ok)
    chosen = chosen_technology(ok)
    if chosen is not None:
        rep.facts.append(("chosen", f"{chosen}: the best geometric-mean TOPS/W over the workloads"))
    table = Section("Results", "One row per technology and workload.")
    cols = ["technology", "workload", *TABLE_COLUMNS, R.BOUND]
    heads = ["technology", "workload", *[figures.metric_label(c) for c in TABLE_COLUMNS[:-1]],
             "memory share of energy [%]", "bound"]
    from dse.columns import human_column

    table.tables.append(Table(heads, [[(f"{r[c]} ★" if c == "technology" and r[c] == chosen else
                                        human_column(c, r[c])) if c != "memory_energy_share" else fmt(100 * r[c])
                                       for c in cols] for _, r in ok.iterrows()]))
    rep.sections.append(table)
    if imc_sec is not None:
        rep.sections.append(imc_sec)
    if len(ok):
        plot = ok.assign(memory_energy_share_pct=100 * ok["memory_energy_share"])
        bars = Section("Per workload, by technology", "Log axes where values span more than two decades.")
        bars.figures.append(Figure("bars", "", figures.grouped_bars(
            plot, [R.THROUGHPUT_SAMPLES, R.ENERGY_PER_SAMPLE, R.AVG_POWER, "memory_energy_share_pct"], chosen=chosen),
            alt="grouped bars of throughput, energy per sample, power and memory energy share",
            caption=f"Hatched, starred: the chosen technology ({chosen})." if chosen else "",
            data=plot_data(chosen, ok["technology"])))
        rep.sections.append(bars)
        heat = Section("Energy efficiency", "TOPS/W of every technology on every workload.")
        heat.figures.append(Figure("tops-per-w", "", figures.heatmap(ok, R.TOPS_PER_W, chosen=chosen),
                                   alt="heatmap of TOPS/W by technology and workload",
                                   caption=f"Outlined, starred: the chosen technology ({chosen})." if chosen else "",
                                   data=plot_data(chosen, ok["technology"])))
        rep.sections.append(heat)
    return rep


def chosen_technology(ok: pd.DataFrame) -> str | None:
    """The technology with the best geometric-mean TOPS/W over the workloads it ran (all of them)."""
    import math

    if ok.empty or R.TOPS_PER_W not in ok:
        return None
    n_workloads = ok["workload"].nunique()
    scores = {}
    for tech, part in ok.groupby("technology", sort=False):
        vals = [v for v in part[R.TOPS_PER_W] if v is not None and v > 0]
        if len(vals) == n_workloads:
            scores[tech] = sum(math.log(v) for v in vals) / len(vals)
    return max(scores, key=scores.get) if scores else None


def imc_lines(ok: pd.DataFrame) -> list[str]:
    """One sentence per IMC row: which weight layers the crossbars ran, and why the others did not."""
    if "imc_ops" not in ok:
        return []
    lines = []
    for _, r in ok[ok["imc_ops"].notna()].iterrows():
        n, total = int(r["imc_ops"]), int(r["weight_ops"])
        head = f"{r['technology']} on {r['workload']}: "
        if n == 0:
            lines.append(head + f"none of the {total} weight layers moved to the crossbars: the digital units "
                                f"finish every one of them sooner, so this row is the design as it is (plus the "
                                f"crossbars' area and leakage)")
            continue
        names = [x for x in str(r["imc_op_names"]).split(", ") if x]
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        lines.append(head + f"{n} of {total} weight layers moved to the crossbars ({shown}), because the "
                            f"crossbars finish each of them sooner than the digital units, weight traffic "
                            f"included; they take {100 * float(r['imc_latency_share']):.0f}% of the summed op "
                            f"time" + ("; the other layers stay on the digital units" if n < total else ""))
    return lines


def imc_section(ok: pd.DataFrame) -> Section | None:
    lines = imc_lines(ok)
    if not lines:
        return None
    sec = Section("Compute in memory: which layers moved", "The compute-in-memory row adds a crossbar tile "
                  "holding the workload's weights and sends a layer to it only where the crossbars finish that "
                  "layer sooner than the design's own units (weight traffic included); every other layer "
                  "stays where it was, so this row is never slower than the design without the tile.")
    sec.notes.extend(lines)
    return sec

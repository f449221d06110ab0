"""The report of `dse compare` (dse/search/compare.py runs it): a table, and figures drawn
from that table. The table (compare.parquet / .csv) is the record: ``compare_report``
reads it and never simulates.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from dse import results as R
from dse.report.model import Figure, Report, Section, Table, fmt, plot_data

#: Columns of the printed table (and the report's), in order.
TABLE_COLUMNS = [R.THROUGHPUT_SAMPLES, R.ENERGY_PER_SAMPLE, R.AVG_POWER, R.TOPS_PER_W, "memory_energy_share"]


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

"""`dse report` and `dse compare` (registered in dse/cli.py).

Heavy imports (matplotlib, pandas, the engine) happen inside the commands, so that
registering them keeps `dse --help` fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def report(
    study_dir: Path = typer.Argument(..., metavar="DIR", help="Output directory of `dse sweep` (or of `dse compare`)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="HTML file to write (default: DIR/report.html); the Markdown goes beside it."),
) -> None:
    """Write a self-contained HTML report (and a Markdown twin) from a study's result tables."""
    from dse.cli import out as console
    from dse.report.build import build_report

    path = build_report(study_dir, out)
    console.print(f"wrote {path} and {path.with_suffix('.md')}", markup=False, highlight=False)


def compare(
    arch: str = typer.Option(..., "--arch", "-a", help="Architecture YAML file or bundled name."),
    memory: str = typer.Option("ddr5,lpddr5,hbm3,optane", "--memory", "-m",
                               help="Comma-separated memory technologies: ddr4, ddr5, lpddr5, hbm3, optane, any tier "
                                    "of `dse list memories`, or reram-imc (a ReRAM crossbar tile that runs the "
                                    "layers it finishes sooner than the design's units)."),
    workload: str = typer.Option("resnet50,bert-base,gpt-decode,dlrm", "--workload", "-w",
                                 help="Comma-separated workloads (specs, or gpt-decode / gpt-prefill)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="Directory for the table and report (default: results/compare-ARCH)."),
) -> None:
    """The same design with its memory swapped: every workload on every technology, a table and a report."""
    from dse import results as R
    from dse.cli import out as console
    from dse.cli import print_table
    from dse.report.compare import compare as run_compare

    out_dir = out if out is not None else Path("results") / f"compare-{Path(arch).stem}"
    df = run_compare(arch, _split(memory), _split(workload), out_dir)
    ok = df[df["error"].isna()]
    from dse.columns import human_column

    table = ok[["technology", "workload"]].copy()
    for col, head in ((R.THROUGHPUT_SAMPLES, "throughput"), (R.ENERGY_PER_SAMPLE, "energy/sample"),
                      (R.AVG_POWER, "power"), (R.TOPS_PER_W, "efficiency")):
        table[head] = ok[col].map(lambda v, col=col: human_column(col, v))
    table["memory % of energy"] = [f"{100 * s:.1f}" + ("" if src else " *")
                                   for s, src in zip(ok["memory_energy_share"], ok["memory_energy_sourced"])]
    print_table(table, title=f"{arch}: memory technologies")
    if not ok["memory_energy_sourced"].all():
        console.print("* the library sources no read/write energy for this technology: background power only",
                      markup=False, highlight=False)
    from dse.report.compare import imc_lines

    for line in imc_lines(ok):
        console.print(line, markup=False, highlight=False)
    for _, r in df[df["error"].notna()].iterrows():
        console.print(f"{r['technology']} x {r['workload']}: {r['error']}", markup=False, highlight=False)
    console.print(f"wrote {out_dir / 'compare.parquet'} and {out_dir / 'report.html'}", markup=False, highlight=False)

"""`dse validate` (registered in dse/cli.py): the shipped suite of published measurements."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer


def validate(
    cases: Optional[list[Path]] = typer.Argument(None, help="Case files or folders (default: the bundled suite)."),
    kind: Optional[str] = typer.Option(None, "--kind", "-k", help="Only cases of this kind (workload, memory, ...)."),
    name: Optional[str] = typer.Option(None, "--case", "-c", help="Only cases whose name contains this text."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the table to FILE.csv or FILE.parquet."),
) -> None:
    """Run dse against published measurements of real hardware and print the error of each case."""
    from dse.console import fail, out, print_table, write_frame
    from dse.units import fmt as fmt_si
    from dse.units import DIMENSIONS
    from dse.validate.kinds import KINDS
    from dse.validate.run import run_validation, summarise

    if fmt not in ("table", "csv", "json"):
        fail(f"--format: '{fmt}' is not one of table, csv, json")
    if kind is not None and kind not in KINDS:
        fail(f"--kind: '{kind}' is not one of {', '.join(sorted(KINDS))}")
    table = run_validation(cases or None, kind=kind, name=name)
    if table.empty:
        fail("no validation case matches the selection")
    summary = summarise(table)
    if out_file is not None:
        write_frame(table, out_file)
    if fmt == "csv":
        sys.stdout.write(table.to_csv(index=False))
        return
    if fmt == "json":
        doc = {"cases": table.to_dict(orient="records"), "summary": summary}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    units = {u: d for d, (u, _) in DIMENSIONS.items()}

    def show(value: float, unit: str) -> str:
        if unit in units:
            return fmt_si(value, units[unit])
        return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.4g} {unit}"

    shown = table.assign(
        measured=[show(v, u) for v, u in zip(table["measured"], table["unit"])],
        dse=[show(v, u) for v, u in zip(table["dse"], table["unit"])],
        error=[f"{e:+.1%}" for e in table["error"]],
    )
    print_table(shown[["case", "measured", "dse", "error", "cite"]],
                title="dse against published measurements (sources: --format csv or json)")
    out.print(f"{summary['cases']} cases on {summary['systems']} systems: median |error| "
              f"{summary['median_abs_error']:.1%}, worst {summary['worst_abs_error']:.1%} "
              f"({summary['worst_case']})", markup=False, highlight=False)

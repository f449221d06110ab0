"""`dse report` (registered in dse/cli.py).

Heavy imports (matplotlib, pandas) happen inside the command, so that registering it
keeps `dse --help` fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report(
    study_dir: Path = typer.Argument(..., metavar="DIR", help="Output directory of `dse sweep` (or of `dse compare`)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o",
                                       help="HTML file to write (default: DIR/report.html); the Markdown goes beside it."),
) -> None:
    """Write a self-contained HTML report (and a Markdown twin) from a study's result tables."""
    from dse.console import out as console
    from dse.report.build import build_report

    path = build_report(study_dir, out)
    console.print(f"wrote {path} and {path.with_suffix('.md')}", markup=False, highlight=False)

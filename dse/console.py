"""What the command line prints with: Rich consoles, one-line errors, tables, files.

Only the command modules (dse/cli.py and the cli.py of search, report, system, validate and serving)
import this; library code never prints or exits (an import-linter contract in pyproject.toml).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from dse.errors import printable

if TYPE_CHECKING:
    from rich.text import Text

out = Console()
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def text(value) -> "Text":
    """A value from an input file as plain terminal text: never Rich markup, control characters escaped."""
    from rich.text import Text

    return Text(printable(str(value)))


def print_table(df, title: str | None = None, units: dict[str, str] | None = None) -> None:
    """A table for people: each value with its unit (1.19 GHz, 12 MiB), from the column's name
    unless ``units`` gives it; CSV and JSON output keep the SI floats."""
    from dse.columns import human_column

    units = units or {}
    table = Table(title=text(title) if title is not None else None, show_lines=False)
    for col in df.columns:
        table.add_column(text(col), overflow="fold")
    for _, row in df.iterrows():
        table.add_row(*(text(human_column(str(c), v, units.get(c))) for c, v in zip(df.columns, row.tolist())))
    out.print(table)


def print_summary(row: dict, title: str) -> None:
    from dse.columns import human_column

    table = Table(title=text(title))
    table.add_column(text("metric"))  # Text, not str: no markup/emoji pass (Rich's emoji table is ~2 ms to import)
    table.add_column(text("value"), justify="right")
    for k, v in row.items():
        table.add_row(text(k), text(human_column(k, v)))
    out.print(table)


def print_records(df, fmt: str) -> bool:
    """``df`` (a DataFrame, or a list of row dicts of plain Python values, which needs no pandas)
    on stdout as CSV or JSON records when ``fmt`` asks for one; False for a table."""
    import json
    import sys

    rows = df if isinstance(df, list) else None
    if fmt == "csv":
        if rows is None:
            sys.stdout.write(df.to_csv(index=False))
        else:  # written as pandas writes them: floats by repr, None empty, minimal quoting
            import csv

            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "json":
        records = rows if rows is not None else df.to_dict(orient="records")
        sys.stdout.write(json.dumps(records, indent=2, default=str) + "\n")
    else:
        return False
    return True


def write_frame(df, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        fail(f"{path}: --out must end in .csv or .parquet")

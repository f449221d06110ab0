"""Running the suite: one row per case with measured, dse and the relative error."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from dse.errors import DseError


#: columns of the table run_validation() returns, in order
COLUMNS = ["case", "kind", "system", "metric", "unit", "measured", "dse", "error", "cite", "source", "notes"]


def run_validation(paths: list[str | Path] | str | Path | None = None, *, kind: str | None = None,
                   name: str | None = None) -> pd.DataFrame:
    """Run every case (default: the bundled suite) and return the comparison table.

    ``measured`` and ``dse`` are SI floats in ``unit``; ``error`` is dse / measured - 1
    (positive: dse predicts more than was measured). ``kind`` and ``name`` (a substring)
    select cases.
    """
    from dse.validate.cases_file import load_cases
    from dse.validate.kinds import kind_module

    rows = []
    for case, base in load_cases(paths):
        if kind is not None and case.kind != kind:
            continue
        if name is not None and name not in case.name:
            continue
        try:
            value = kind_module(case.kind).evaluate(case, base)
        except DseError as exc:   # name the case whose configuration failed
            raise type(exc)(f"case '{case.name}': {exc}") from None
        rows.append({
            "case": case.name, "kind": case.kind, "system": case.system, "metric": case.metric,
            "unit": case.unit, "measured": case.measured, "dse": value,
            "error": value / case.measured - 1.0 if math.isfinite(value) else math.nan,
            "cite": case.cite, "source": case.source, "notes": case.notes,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def summarise(table: pd.DataFrame) -> dict[str, float | str | int]:
    """Median and worst absolute relative error over the cases, and which case is worst."""
    err = table["error"].abs()
    worst = int(err.idxmax()) if len(err) else None
    return {
        "cases": int(len(table)),
        "systems": int(table["system"].nunique()),
        "median_abs_error": float(err.median()) if len(err) else math.nan,
        "worst_abs_error": float(err.max()) if len(err) else math.nan,
        "worst_case": str(table.loc[worst, "case"]) if worst is not None else "",
    }

"""The serving section of a study report: the latency-throughput curve of its trials and the
design chosen, for studies whose workloads are ``serve:...`` runs (dse.serving)."""
from __future__ import annotations

import pandas as pd

from dse import results as R
from dse.report.model import Figure, Section, fmt

LATENCY = R.percentile_col(R.TPOT, 99)
THROUGHPUT = R.TOKENS_PER_S


def serving_section(agg: pd.DataFrame, top: pd.DataFrame, params: list[str],
                    constraints: list[str]) -> Section | None:
    """None unless the trials carry serving metrics. ``top``'s first row is the chosen design."""
    if THROUGHPUT not in agg or LATENCY not in agg:
        return None
    from dse.report.figures import latency_throughput

    done = agg[(agg["state"] == "COMPLETE") & agg[THROUGHPUT].notna()]
    sec = Section("Serving: latency against throughput",
                  "Each completed design's output tokens per second against its p99 time per output token; "
                  "lines join designs that differ only in the first parameter. The star is the design "
                  "chosen (best objective among the feasible).")
    if done.empty:
        sec.notes.append("no completed serving trials yet")
        return sec
    series = next((p for p in params if f"param_{p}" in done and done[f"param_{p}"].nunique() > 1
                   and pd.api.types.is_numeric_dtype(done[f"param_{p}"])), None)
    hue = next((p for p in params if p != series and f"param_{p}" in done), None)
    chosen = top.iloc[0] if len(top) else None
    slo = _slo(constraints)
    png = latency_throughput(done, THROUGHPUT, LATENCY, order=f"param_{series}" if series else None,
                             hue=f"param_{hue}" if hue else None, chosen=chosen, slo=slo)
    sec.figures.append(Figure("latency-throughput", "Latency-throughput curve", png,
                              alt=f"p99 TPOT against tokens per second for {len(done)} designs"))
    if chosen is not None:
        picked = ", ".join(f"{p} = {fmt(chosen[f'param_{p}'])}" for p in params if f"param_{p}" in chosen)
        sec.notes.append(f"chosen: trial {int(chosen['trial'])} ({picked}): {fmt(chosen[THROUGHPUT])} tokens/s, "
                         f"p99 TPOT {fmt(chosen[LATENCY])} s, {fmt(chosen.get(R.TOKENS_PER_J))} tokens/J")
    return sec


def _slo(constraints: list[str]) -> float | None:
    """The bound of a ``tpot_p99_s <= ...`` constraint, in seconds."""
    from dse.units import to_si

    for text in constraints:
        metric, _, bound = text.partition("<=")
        if metric.strip() == LATENCY:
            try:
                return float(to_si(bound.strip(), "time"))
            except ValueError:
                try:
                    return float(bound)
                except ValueError:
                    return None
    return None

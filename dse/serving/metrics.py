"""Serving metrics: per request (TTFT, TPOT, end-to-end) and per run (percentiles, throughput,
tokens per joule, goodput under SLOs)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dse import results as R
from dse.results import (E2E, GOODPUT, PERCENTILES, REQUESTS_PER_S, SLO_ATTAINMENT, TOKENS_PER_J, TOKENS_PER_S,
                         TPOT, TTFT, percentile_col)
from dse.serving.scheduler import RunLog


def request_table(log: RunLog) -> pd.DataFrame:
    """One row per request. TPOT is the mean gap between output tokens after the first
    ((end-to-end - TTFT) / (output tokens - 1)); empty (NA) for one-token outputs."""
    rows = []
    for s in log.sequences:
        r = s.req
        ttft = s.first_token_s - r.arrival_s
        e2e = s.finish_s - r.arrival_s
        tpot = (s.finish_s - s.first_token_s) / (r.output_tokens - 1) if r.output_tokens > 1 else None
        rows.append({"request": r.id, "arrival_s": r.arrival_s, "prompt_tokens": r.prompt_tokens,
                     "output_tokens": r.output_tokens, "first_token_s": s.first_token_s,
                     "finish_s": s.finish_s, TTFT: ttft, TPOT: tpot, E2E: e2e, "preemptions": s.preemptions})
    df = pd.DataFrame(rows)
    df[TPOT] = df[TPOT].astype("Float64")
    return df


def run_summary(log: RunLog, requests: pd.DataFrame, *, static_power_w: float, slo_ttft_s: float,
                slo_tpot_s: float, chips: int = 1) -> dict:
    """One row of run metrics. The run lasts from the first arrival to the last token; the
    chips draw their static power (``static_power_w`` for all of them) all along, busy or idle."""
    start = float(requests["arrival_s"].min())
    span = log.end_s - start
    tokens = int(requests["output_tokens"].sum())
    energy = log.dynamic_energy_j + static_power_w * span
    row: dict = {"requests": len(requests), "output_tokens": tokens,
                 "prompt_tokens": int(requests["prompt_tokens"].sum()), "duration_s": span}
    for col in (TTFT, TPOT, E2E):
        # TPOT has no value when no request produced a second token (every output one token
        # long): its percentiles are then empty (None), not a false 0 s
        vals = requests[col].dropna().to_numpy(dtype=float)
        for p in PERCENTILES:
            row[percentile_col(col, p)] = float(np.percentile(vals, p)) if len(vals) else None
        row[R.mean_col(col)] = float(vals.mean()) if len(vals) else None
    # a one-token request has no gap between tokens, so it cannot miss the TPOT objective
    tpot = requests[TPOT]
    tpot_met = (tpot.isna() | (tpot <= slo_tpot_s)).to_numpy(dtype=bool)
    met = (requests[TTFT].to_numpy() <= slo_ttft_s) & tpot_met
    row[TOKENS_PER_S] = tokens / span
    row[REQUESTS_PER_S] = len(requests) / span
    row[GOODPUT] = float(met.sum()) / span
    row[SLO_ATTAINMENT] = float(met.mean())
    row[TOKENS_PER_J] = tokens / energy
    row[R.ENERGY] = energy
    row["dynamic_energy_j"] = log.dynamic_energy_j
    row["static_energy_j"] = static_power_w * span
    row[R.AVG_POWER] = energy / span
    row[R.LATENCY] = span
    row[R.THROUGHPUT_SAMPLES] = row[REQUESTS_PER_S]
    row[R.ENERGY_PER_SAMPLE] = energy / len(requests)
    row["busy_fraction"] = log.busy_s / span / chips
    row["iterations"] = len(log.iterations)
    decoding = [it[2] for it in log.iterations if it[2]]
    row["mean_decode_batch"] = float(np.mean(decoding)) if decoding else 0.0
    row["peak_running"] = log.peak_running
    row["kv_peak_blocks"] = log.peak_blocks
    row["preemptions"] = log.preemptions
    return row

"""The two-stage study: the screen that fits a study (one chip, a system of many chips, a
serving run) estimates many candidate designs at once, and the most promising are simulated
as the study's trials (the ``screen:`` key of a study file)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dse.search.screen import Screen, sample
from dse.search.screen_errors import unscreenable
from dse.spec.architecture import Architecture
from dse.workloads.ops import Workload

if TYPE_CHECKING:
    from dse.search.resolve import Study


def screen_for(st: "Study"):
    """The analytic evaluator that fits the study: one chip, a system of many chips or a
    serving run. A SpecError (naming the study file and its ``screen:`` line) says why a
    study cannot be screened."""
    if not isinstance(st.base_arch, Architecture):  # a system of many chips: one training step
        from dse.search.screen_system import SystemScreen

        return SystemScreen(st)
    serving = [not isinstance(w.workload, Workload) for w in st.workloads]
    if any(serving):  # a request stream served on one chip
        if not all(serving):
            raise unscreenable(st, "a study mixing serving runs (serve:...) and other workloads, "
                                   "which the screen does not estimate")
        from dse.search.screen_serving import ServingScreen

        return ServingScreen(st)
    return Screen(st)


def promising(st: "Study", candidates: int, keep: int, seed: int | None) -> tuple[list[dict], dict]:
    """The ``keep`` most promising of ``candidates`` designs drawn from the space, by the
    screen's estimates: estimated-feasible first (least violation next), then Pareto rank
    on the objectives, then the first objective. Returns their parameter values (keyed by
    path, as the trial suggests them) and a summary of the screen."""
    import time

    from dse.search.tables import pareto_ranks

    screen = screen_for(st)  # first: a study it cannot screen fails before anything is drawn
    t0 = time.process_time()
    values = sample(st, candidates, seed)
    est = screen.evaluate(values)
    cpu_s = time.process_time() - t0
    n = len(next(iter(values.values())))
    cons = [np.nan_to_num(est[f"constraint_{i}"], nan=0.0) for i in range(len(st.constraints))]
    violation = np.sum([np.maximum(c, 0.0) / (abs(c).max() or 1.0) for c in cons], axis=0) if cons \
        else np.zeros(n)
    objs = np.column_stack([np.nan_to_num(est[o.metric], nan=o.worst()) if o.metric in est else np.zeros(n)
                            for o in st.objectives])
    sign = np.array([-1.0 if o.direction == "maximize" else 1.0 for o in st.objectives])
    # the best few thousand by the first objective (feasible first) are ranked by Pareto front
    order = np.lexsort((sign[0] * objs[:, 0], violation))[: max(4 * keep, 2000)]
    ranks = np.zeros(len(order), dtype=int)
    if objs.shape[1] > 1:
        ranks = pareto_ranks(objs[order], [o.direction for o in st.objectives])
    order = order[np.lexsort((sign[0] * objs[order, 0], ranks, violation[order]))]
    chosen: list[dict] = []
    seen: set[tuple] = set()
    for i in order:
        params = {p.path: _plain(p, values[p.path][i]) for p in st.space.parameters}
        key = tuple(params.values())
        if key not in seen:
            seen.add(key)
            chosen.append(params)
        if len(chosen) == keep:
            break
    summary = {"candidates": n, "simulated": len(chosen), "screen_cpu_s": cpu_s,
               "estimated_feasible": int(est["feasible"].sum())}
    return chosen, summary


def _plain(p, v) -> Any:
    """A sampled value as the parameter's own type (a choice of the list, an int, a float on its step)."""
    if p.kind == "categorical":
        return next(c for c in p.choices if c == (v.item() if hasattr(v, "item") else v))
    if p.kind == "int":
        return int(v)
    x = float(v)
    if p.step is not None:
        x = p.low + round((x - p.low) / p.step) * p.step
    return min(max(x, p.low), p.high)

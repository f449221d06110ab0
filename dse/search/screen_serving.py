"""The screen of a serving study: a request stream served on one chip, estimated analytically
for each candidate's serving knobs (``serving.batch_cap``, ``serving.kv_precision``, ...).

Candidates with the same knobs share one estimate (a study's serving knobs take few distinct
values, so 100,000 candidates cost a few hundred estimates). For one set of knobs:

- the iteration's cost: the serving model's own parts (``dse.serving.cost.IterationCost``:
  the token-parallel part of every layer over the iteration's tokens, the decode batch's
  attention over its cached tokens, a prefill chunk's attention, embedding, LM head) with each
  part's ops estimated by the one-chip screen's roofline (dse.search.screen: per op
  max(compute, SRAM, weights + KV bytes over the memory bandwidth), ops one after another)
  instead of simulated;
- the steady batch: b = min(batch cap, the sequences the KV-cache budget holds at their mean
  footprint (prompt + half the output, ``dse.serving.budget.kv_blocks``), the sequences the
  arrivals keep busy (Little's law: arrival rate x output tokens x iteration time)); each
  iteration decodes b tokens and prefills the prompt tokens that keep the batch full (b /
  mean output of the sequences finish per iteration, each bringing a mean prompt), at most a
  chunk;
- TPOT: the steady iteration's time (every percentile: the estimate has no spread); tokens per
  second: b / that time when the chip is saturated, the arrivals' tokens per second when not;
  the run lasts from the first arrival until every output token is served; energy: the
  iterations' dynamic energy plus the chip's static power over the run.

Not modelled: preemption's recomputation, queueing delay (TTFT is not estimated: a constraint
on it counts as met), ramp-up and drain of the batch, disaggregated prefill. Chip fields
cannot be searched together with the serving knobs (a SpecError says so).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from dse import results as R
from dse.errors import DesignError, SpecError
from dse.search.objective import CAPACITY_MARGIN
from dse.search.screen import Roofline, feasible
from dse.search.screen_errors import unscreenable
from dse.serving.budget import kv_blocks, margin_bytes
from dse.serving.cost import IterationCost
from dse.serving.spec import PARAM_PREFIX, ServingSpec

if TYPE_CHECKING:
    from dse.search.resolve import Study

TPOT_COLS = [R.percentile_col(R.TPOT, p) for p in R.PERCENTILES] + ["tpot_mean_s"]
#: Metrics the serving screen estimates.
SCREENED = (R.TOKENS_PER_S, R.TOKENS_PER_J, R.REQUESTS_PER_S, R.ENERGY, R.AVG_POWER, R.LATENCY,
            R.THROUGHPUT_SAMPLES, R.ENERGY_PER_SAMPLE, R.AREA, CAPACITY_MARGIN, *TPOT_COLS)


class RooflineCost(IterationCost):
    """The serving model's iteration cost with each part's ops estimated by the one-chip
    roofline (dse.search.screen) instead of simulated."""

    def __init__(self, arch, shape, fmt):
        self._roofline = Roofline(arch)
        super().__init__(arch, shape, fmt)
        self.static_power_w = self._roofline.static_power_w

    def _run(self, key: tuple, build) -> tuple[float, float]:
        hit = self._points.get(key)
        if hit is None:
            from dse.workloads.builder import Graph

            g = Graph(self.fmt.activations)
            build(g)
            t = e = 0.0
            for op in g.workload(str(key), samples=1).ops:
                ot, oe = self._roofline.op(op)
                t += ot
                e += oe
            self.engine_runs += 1
            hit = self._points[key] = (t, e)
        return hit


class ServingScreen:
    """The analytic evaluator of a resolved serving study."""

    def __init__(self, st: "Study"):
        self.st = st
        if len(st.workloads) != 1:
            raise unscreenable(st, "a serving study with more than one workload, which the serving "
                                   "screen does not estimate")
        for path in [p.path for p in st.space.parameters] + [d.path for d in st.space.derived]:
            if not path.startswith(PARAM_PREFIX):
                raise unscreenable(st, f"parameter '{path}' is a chip field; the serving screen "
                                       f"estimates serving knobs (serving.*) on the study's chip only")
        self.spec: ServingSpec = st.workloads[0].workload
        self.arch = st.base_arch
        self._costs: dict[tuple, RooflineCost] = {}
        self._streams: dict[tuple, tuple] = {}

    def evaluate(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Metrics (SCREENED), ``constraint_<i>`` and ``feasible`` per candidate."""
        n = len(next(iter(values.values())))
        paths = list(values)
        out = {m: np.full(n, np.nan) for m in SCREENED}
        columns = [np.asarray(values[p]) for p in paths]
        seen: dict[tuple, dict] = {}
        for i in range(n):
            key = tuple(_plain(c[i]) for c in columns)
            if key not in seen:
                knobs = {p[len(PARAM_PREFIX):]: v for p, v in zip(paths, key)}
                try:
                    seen[key] = self.estimate(self.spec.with_values(**knobs))
                except (DesignError, SpecError):
                    seen[key] = {}   # an invalid design: left NaN, ranked last
            for m, v in seen[key].items():
                out[m][i] = v
        cons = []
        for i, c in enumerate(self.st.constraints):
            metric = CAPACITY_MARGIN if c.metric is None else c.metric
            if metric not in out:
                v = np.full(n, np.nan)   # unknown to the screen: counts as met
            elif c.metric is None:
                v = out[metric]
            else:
                v = out[metric] - c.bound if c.op == "<=" else c.bound - out[metric]
            out[f"constraint_{i}"] = v
            cons.append(v)
        out["feasible"] = feasible(cons, n)
        return out

    def _stream(self, spec: ServingSpec) -> tuple[int, float, float, float, float]:
        """(requests, first and last arrival, mean prompt, mean output tokens) of the stream."""
        key = (spec.trace, spec.rate, spec.requests, spec.prompt_tokens, spec.output_tokens, spec.seed, spec.model)
        if key not in self._streams:
            reqs = spec.stream()
            self._streams[key] = (len(reqs), min(r.arrival_s for r in reqs), max(r.arrival_s for r in reqs),
                                  float(np.mean([r.prompt_tokens for r in reqs])),
                                  float(np.mean([r.output_tokens for r in reqs])))
        return self._streams[key]

    def estimate(self, spec: ServingSpec) -> dict[str, float]:
        """The steady-state estimate of one set of serving knobs (module docstring)."""
        shape, fmt = spec.shape(), spec.formats
        count, first, last, prompt, output = self._stream(spec)
        kvpt = shape.kv_bytes_per_token(fmt)
        margin = margin_bytes(self.arch, spec)
        blocks = kv_blocks(self.arch, shape.weight_bytes(fmt), kvpt, spec.block_tokens)
        ckey = (shape, fmt)
        if ckey not in self._costs:
            self._costs[ckey] = RooflineCost(self.arch, shape, fmt)
        cost = self._costs[ckey]
        held = prompt + output / 2 + spec.block_tokens / 2     # mean tokens a running sequence holds
        by_memory = blocks * spec.block_tokens / held
        past = prompt + output / 2                              # mean cached tokens of a decoder
        arrivals = count / max(last - first, 1e-9)              # requests per second

        def iteration(b: float) -> tuple[float, float, int]:
            bi = max(1, int(round(b)))
            q = int(round(min(spec.chunk_tokens, prompt * bi / output)))
            chunks = [(q, int(prompt / 2))] if q else []
            t, e = cost.iteration(bi, int(round(bi * past)), chunks, bi + (1 if q else 0))
            return t, e, bi

        cap = float(min(spec.batch_cap, by_memory, count))
        b = cap
        for _ in range(20):   # Little's law: sequences the arrivals keep decoding
            t, _, _ = iteration(b)
            nxt = min(cap, arrivals * output * t)
            if abs(nxt - b) < 0.5:
                b = nxt
                break
            b = nxt
        t, e, bi = iteration(b)
        tokens = count * output
        serve_s = tokens * t / bi                               # the iterations that decode them all
        span = max(serve_s, last - first + (output + prompt / spec.chunk_tokens) * t)
        energy = serve_s / t * e + cost.static_power_w * span
        row = {R.TOKENS_PER_S: tokens / span, R.TOKENS_PER_J: tokens / energy, R.REQUESTS_PER_S: count / span,
               R.THROUGHPUT_SAMPLES: count / span, R.ENERGY: energy, R.AVG_POWER: energy / span,
               R.LATENCY: span, R.ENERGY_PER_SAMPLE: energy / count, R.AREA: self.arch.area_mm2,
               CAPACITY_MARGIN: margin}
        row.update({c: t for c in TPOT_COLS})
        return row


def _plain(v) -> Any:
    v = v.item() if hasattr(v, "item") else v
    return int(v) if isinstance(v, float) and v.is_integer() and not math.isinf(v) else v

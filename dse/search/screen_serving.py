"""The screen of a serving study: a request stream served on one chip, estimated analytically
for each candidate's serving knobs (``serving.batch_cap``, ``serving.kv_precision``, ...).

Candidates with the same knobs share one estimate (a study's serving knobs take few distinct
values, so 100,000 candidates cost a few hundred estimates). For one set of knobs, the stream
gives the arrival rate lambda (requests over the arrival window) and each request's prompt P and
D = output - 1 decode iterations (its first token comes with its prefill); the pieces are in
``dse.search.screen_serving_queue``.

- An iteration's cost: the serving model's own parts (``dse.serving.cost.IterationCost``: the
  token-parallel part of every layer over the iteration's tokens, the decode batch's attention
  over its cached tokens, a prefill chunk's attention, embedding, LM head) with each part's ops
  by the one-chip roofline (dse.search.screen) instead of simulated. A decoding sequence holds
  sum(P D + D (D - 1) / 2) / sum(D) cached tokens on average (each decode step counted once).
- Chunked prefill: an iteration prefills at most C prompt tokens, FCFS. In expectation an
  iteration carries n_full full chunks and n_last last chunks of a busy period (an M/G/1 argument,
  ``Iterations``), each costed at its own size: the iteration is memory-bound until its tokens
  reach the chip's ridge and compute-bound after, so a full chunk costs far more than its share
  of a mean prefill spread over every iteration.
- The batch: below the cap every arrival starts at once, so the decoding sequences form an
  M/G/inf queue: their number at a random moment is Poisson with mean m = lambda D t (Little's
  law, t the mean iteration), and a decoding request shares its iterations with itself and
  Poisson(m) others (M/G/inf seen from a customer in it), b = 1 + m. At most b_max decode: the
  batch cap or the sequences the KV budget holds at their mean footprint, less those prefilling
  (r ceil(P/C) by Little, r = m / D prompts per iteration), and below what the chunk budget can
  prefill (r Pbar < C). t and m are solved together (t grows with b). Where lambda D t reaches
  b_max the chip is saturated: requests queue and the batch stays at b_max.
- TPOT: a request's mean is the iteration at the batch expected over its own life (the run
  starts empty and fills, as an M/G/inf queue started empty does, and drains after the last
  admission: ``transient_batch``, its area read at each request's start and end by
  ``transient_area``), with prompts prefilling while requests still start. Its spread comes
  from the other requests' starts, a Poisson shot noise (their chunks' extra time within its
  life, and their decode overlapping it; Campbell's theorem, ``tpot_sigma``), clipped where the
  cap holds the batch. p50/p90/p99 are the quantiles of the mixture of the requests' normal
  laws; the mean, the mean of theirs.
- Preemption (paged admission, where the KV budget bounds the batch below the cap and the
  arrivals keep it full): the free KV space is a driftless walk between zero and the head's
  prompt, pushed at zero by preempting the newest sequence, sigma^2 / (2 Pbar^2) times per
  request (``preemptions_per_request``). A preempted request waits for the next finish (1 / r
  iterations in the mean) and prefills again (its prompt adds to the prefill rate); its TPOT
  carries that wait over its D iterations (a second component of the mixture). Swap preemption
  is costed as recompute.
- The run: a main phase (the arrival window, or at saturation the decode work at b_max per
  iteration plus half the time the arrivals take to fill the batch), then the drain of the last
  m sequences over their residual lives (equilibrium residual of D), the batch shrinking as they
  end. Energy: the chip's static power over the run, the dynamic power of a busy iteration (mean
  batch m / (1 - exp(-m)) when busy, at most b_max) over the busy share of the main phase
  (1 - exp(-rate (ceil(P/C) + D) t): M/G/inf is empty with probability exp(-mean), the rate
  being lambda, or at saturation the r / t that start as others finish; saturated, the queue
  never empties and the share is 1), and the drain's iterations.

Against the serving scheduler run on the same iteration costs (tests/test_screen_serving.py),
p50/p99 TPOT and tokens per joule fall within 4% on 19 runs over models, chips, rates (light
loads and saturated caps of one and two among them), lengths, chunks, caps and both
admissions, and the p99 TPOT within 5.1% on 3 runs where the scheduler preempts. Where every
request has the same prompt and output, preemptions come in cascades the walk does not see
(h100-class, llama-3-70b fp8, rate 8/s, 300 requests of 1024 prompt and 512 output tokens,
cap 64: a p99 of 52.1 ms against an estimate of 31.5 ms; with prompts of 512-1536 and
outputs of 256-768 tokens, 34.9 against 32.0 ms). Not modelled: TTFT (a
constraint on it counts as met), disaggregated prefill. Chip fields cannot be searched together
with the serving knobs (a SpecError says so).
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
from dse.search.screen_serving_queue import (Iterations, Stream, clipped_variance_share, mixture_quantile,
                                             preemptions_per_request, tpot_sigma, transient_area)
from dse.serving.budget import kv_blocks, margin_bytes
from dse.serving.cost import IterationCost
from dse.serving.spec import PARAM_PREFIX, ServingSpec
from dse.spec.architecture import Architecture

if TYPE_CHECKING:
    from dse.search.resolve import Study

#: the least mean decode iterations (where every output is one token no request decodes; the
#: floor keeps the prefilling share B / D and the prompt rate m / D finite, and the TPOT is 0)
MIN_MEAN_DECODE = 1e-9
#: the share of the chunk budget C the prompts may take (r Pbar < C strictly: at r Pbar = C the
#: chunk budget, an FCFS server of prompt tokens, is busy every iteration and its queue grows
#: without bound, so the batch is held just below it)
CHUNK_BUDGET_SHARE = 0.999

TPOT_COLS = [R.percentile_col(R.TPOT, p) for p in R.PERCENTILES] + [R.mean_col(R.TPOT)]
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


class ServingEstimator:
    """Serving runs on one chip estimated analytically (module docstring); iteration costs
    and stream moments are kept for the next set of knobs."""

    def __init__(self, arch: Architecture):
        self.arch = arch
        self._costs: dict[tuple, RooflineCost] = {}
        self._streams: dict[tuple, Stream] = {}

    def _stream(self, spec: ServingSpec) -> Stream:
        key = (spec.trace, spec.rate, spec.requests, spec.prompt_tokens, spec.output_tokens, spec.seed, spec.model,
               spec.chunk_tokens)
        if key not in self._streams:
            reqs = spec.stream()
            self._streams[key] = Stream.of(np.array([r.arrival_s for r in reqs]),
                                           np.array([r.prompt_tokens for r in reqs]),
                                           np.array([r.output_tokens for r in reqs]), spec.chunk_tokens)
        return self._streams[key]

    def estimate(self, spec: ServingSpec) -> dict[str, float]:
        """The estimate of one set of serving knobs (module docstring)."""
        shape, fmt = spec.shape(), spec.formats
        s = self._stream(spec)
        margin = margin_bytes(self.arch, spec)
        blocks = kv_blocks(self.arch, shape.weight_bytes(fmt), shape.kv_bytes_per_token(fmt), spec.block_tokens)
        ckey = (shape, fmt)
        if ckey not in self._costs:
            self._costs[ckey] = RooflineCost(self.arch, shape, fmt)
        cost = self._costs[ckey]
        past = s.mean_past
        it = Iterations(lambda b, chunks, logits: cost.iteration(b, int(round(b * past)), chunks, logits), s)
        lam, dbar = s.rate_per_s, max(s.mean_decode, MIN_MEAN_DECODE)
        bbar = float(s.prefill_iterations.mean())
        if spec.admission == "reserve":   # prompt + output reserved for a sequence's whole life
            life = s.prefill_iterations + s.decode
            tokens = np.ceil((s.prompt + s.decode + 1) / spec.block_tokens) * spec.block_tokens
            held = float((tokens * life).sum() / life.sum())
        else:                             # blocks grow with the cache: half a block of rounding
            held = past + 1 + (spec.block_tokens - 1) / 2
        by_memory = blocks * spec.block_tokens / held
        # the most decoding: the cap (or what the KV budget holds) less the prefilling (r B by
        # Little), and below what the chunk budget can prefill (r Pbar < C)
        b_max = min(spec.batch_cap, by_memory, s.count) / (1 + bbar / dbar)
        b_max = max(min(b_max, CHUNK_BUDGET_SHARE * spec.chunk_tokens / it.mean_prompt * dbar), 1.0)
        m = b_max
        for _ in range(60):   # Little's law: m = lambda x D x TPOT, TPOT at the batch a request sees
            t, _ = it.mean(min(1 + m, b_max), m / dbar)
            nxt = min(b_max, lam * dbar * t)
            done = abs(nxt - m) < 1e-4
            m = nxt
            if done:
                break
        r = m / dbar
        seen = min(1 + m, b_max)
        t, e = it.mean(seen, r)
        unclipped = lam * dbar * t
        # preemption: paged admission keeps a KV budget that bounds the batch (below the cap) full
        preempted = 0.0
        if spec.admission == "paged" and by_memory < spec.batch_cap and unclipped >= b_max:
            preempted = min(preemptions_per_request(s.prompt, s.decode + 1, dbar), 1.0)
            t, e = it.mean(seen, r * (1 + preempted))   # their prompts prefilled again
        rate = min(lam, r / t)   # at saturation, sequences start as others finish
        # the run: a main phase while sequences start, then the drain of the last m
        surv = s.residual_survival()
        residual = float(surv.sum())
        main = max(s.last_s - s.first_s, (s.count * dbar - m * residual) * t / m + m / lam / 2)
        last = max(int(np.searchsorted(-surv, -1 / (m + 1))), int(math.ceil(bbar + dbar)))
        batch = m * np.interp(np.arange(last), np.arange(len(surv)), surv, right=0.0)
        drain = [it.parts(max(int(round(x)), 1))[0] for x in batch]
        drain_s, drain_j = sum(x[0] for x in drain), sum(x[1] for x in drain)
        # the busy share of the main phase and the mean batch when busy (M/G/inf given N >= 1);
        # saturated (the cap binds), the queue never empties and the batch sits at the cap
        saturated = unclipped >= b_max
        busy = 1.0 if saturated else -math.expm1(-rate * (bbar + dbar) * t)
        tb, eb = it.mean(min(m / -math.expm1(-m), b_max), r * (1 + preempted))
        span = main + drain_s
        energy = main * busy * eb / tb + drain_j + cost.static_power_w * span
        # TPOT per request: the mean over its own life of the batch expected then (the run starts
        # empty and drains), prompts prefilling while sequences still start; the spread from
        # the others' shots; percentiles of the mixture over the stream's requests
        row = {c: 0.0 for c in TPOT_COLS}   # every output one token: no TPOT, as simulated
        dec = s.decode >= 1
        if dec.any():
            main_it = main / t
            start = (s.arrival_s - s.first_s) / t
            if unclipped > b_max:   # saturated: FCFS admissions at the service rate
                start = np.maximum(start, np.arange(s.count) * main_it / s.count)
            start = (start + s.prefill_iterations)[dec]
            d = s.decode[dec]
            others = (transient_area(surv, m, unclipped, main_iterations=main_it, y=start + d)
                      - transient_area(surv, m, unclipped, main_iterations=main_it, y=start)) / d
            starting = np.clip((main_it - start) / d, 0.0, 1.0)
            whole = np.arange(int(math.ceil(b_max)) + 2, dtype=float)
            with_prefill = np.array([it.mean(b, r)[0] for b in whole])
            without = np.array([it.mean(b, 0.0)[0] for b in whole])
            seen_i = np.minimum(1 + others, b_max)
            mean_i = (starting * np.interp(seen_i, whole, with_prefill)
                      + (1 - starting) * np.interp(seen_i, whole, without))
            life = s.prefill_iterations + s.decode
            dispersion = float(life.var() / life.mean() ** 2)
            sigma = tpot_sigma(d, iteration_s=t, slope_s=it.slope(seen, r),
                               share=clipped_variance_share(unclipped, b_max - 1), dispersion=dispersion,
                               rate_per_s=rate, shot=it.parts(int(round(seen)))[3])
            weight = np.full(len(d), 1.0)
            if preempted:   # a preempted request waits for the next finish, then prefills again
                wait, wait_var = (1 / r + bbar) * t, (t / r) ** 2
                mean_i = np.concatenate([mean_i, mean_i + wait / d])
                sigma = np.concatenate([sigma, np.sqrt(sigma ** 2 + wait_var / d ** 2)])
                weight = np.concatenate([weight * (1 - preempted), weight * preempted])
            row = {R.percentile_col(R.TPOT, p): mixture_quantile(mean_i, sigma, p / 100, weight)
                   for p in R.PERCENTILES}
            row[R.mean_col(R.TPOT)] = float((mean_i * weight).sum() / weight.sum())
        tokens = s.output_tokens
        row.update({R.TOKENS_PER_S: tokens / span, R.TOKENS_PER_J: tokens / energy, R.REQUESTS_PER_S: s.count / span,
                    R.THROUGHPUT_SAMPLES: s.count / span, R.ENERGY: energy, R.AVG_POWER: energy / span,
                    R.LATENCY: span, R.ENERGY_PER_SAMPLE: energy / s.count, R.AREA: self.arch.area_mm2,
                    CAPACITY_MARGIN: margin})
        return row


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
        self.estimator = ServingEstimator(self.arch)

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

    def estimate(self, spec: ServingSpec) -> dict[str, float]:
        """The estimate of one set of serving knobs on the study's chip."""
        return self.estimator.estimate(spec)


def _plain(v) -> Any:
    v = v.item() if hasattr(v, "item") else v
    return int(v) if isinstance(v, float) and v.is_integer() and not math.isinf(v) else v

"""The queueing side of the serving screen: what continuous batching with chunked prefill
makes of a request stream, in expectation, given the cost of one iteration.

``dse.search.screen_serving`` states the model and its derivation, and
``ServingEstimator.estimate`` there solves the steady batch and sums the run's length and
energy; this module holds the pieces it calls: the stream's moments, the mean iteration under
chunked prefill, the batch over a run that fills and drains, the spread of TPOT over requests,
preemptions per request and the quantiles of their mixture. Iteration costs come from a
``step(decode_seqs, chunks, logits) -> (seconds, joules)`` callable (the serving model's
``IterationCost.iteration`` with each part by the one-chip roofline).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: prompt lengths at which a last prefill chunk's extra time is averaged (quantile midpoints)
QUADRATURE = 16
#: the shortest arrival window (s): a stream of one request (or all at one instant) has none,
#: and its rate is then taken as so high that every request is present at once (a nanosecond
#: is far below any iteration, which takes microseconds at least)
MIN_WINDOW_S = 1e-9
#: the mixture's quantile is bracketed this many of the widest sigma beyond the extreme means
#: (a normal tail beyond 8 sigma holds 6e-16, below any quantile asked for) ...
QUANTILE_BRACKET_SIGMAS = 8
#: ... and bisected this many times: 2^-60 of a bracket some tens of sigma wide is below a
#: double's resolution of the TPOT
QUANTILE_BISECTIONS = 60

Step = Callable[[int, list[tuple[int, int]], int], tuple[float, float]]


@dataclass(frozen=True)
class Stream:
    """Moments of a request stream, for chunks of ``chunk`` prompt tokens."""

    count: int
    first_s: float
    last_s: float
    #: arrival times in order, prompt tokens and decode iterations (output tokens - 1: the
    #: first output token comes with the prefill)
    arrival_s: np.ndarray
    prompt: np.ndarray
    decode: np.ndarray
    output_tokens: float
    chunk: int

    @classmethod
    def of(cls, arrival_s: np.ndarray, prompt: np.ndarray, output: np.ndarray, chunk: int) -> "Stream":
        order = np.argsort(arrival_s, kind="stable")
        arrival_s, prompt, output = arrival_s[order], prompt[order], output[order]
        return cls(len(arrival_s), float(arrival_s[0]), float(arrival_s[-1]), arrival_s.astype(float),
                   prompt.astype(float), output.astype(float) - 1.0, float(output.sum()), chunk)

    @property
    def rate_per_s(self) -> float:
        """Arrivals per second over the arrival window."""
        return self.count / max(self.last_s - self.first_s, MIN_WINDOW_S)

    @property
    def mean_decode(self) -> float:
        return float(self.decode.mean())

    @property
    def mean_past(self) -> float:
        """Mean cached tokens of a sequence at a decode step, each step counted once: a request's
        k-th step (k = 1..D) follows P + k - 1 cached tokens, so sum(P D + D (D - 1) / 2) / sum(D)."""
        p, d = self.prompt, self.decode
        return float((p * d + d * (d - 1) / 2).sum() / max(d.sum(), 1.0))

    @property
    def prefill_iterations(self) -> np.ndarray:
        """B = ceil(P / chunk): the iterations a prompt takes when it prefills alone."""
        return np.ceil(self.prompt / self.chunk)

    @property
    def last_chunk(self) -> np.ndarray:
        """The tokens of a prompt's last chunk, in (0, chunk]."""
        return self.prompt - self.chunk * (self.prefill_iterations - 1)

    @property
    def full_chunk_past(self) -> int:
        """Mean cached tokens before a full chunk (the k-th of a prompt follows k x chunk)."""
        full = self.prefill_iterations - 1
        return int(round(self.chunk * (full * (full - 1) / 2).sum() / max(full.sum(), 1.0)))

    def quadrature(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prompt lengths at the quantile midpoints: their full chunks, last chunk and its past."""
        p = np.quantile(self.prompt, (np.arange(QUADRATURE) + 0.5) / QUADRATURE, method="inverted_cdf")
        b = np.ceil(p / self.chunk)
        return b - 1, (p - self.chunk * (b - 1)).astype(int), (self.chunk * (b - 1)).astype(int)

    def residual_survival(self) -> np.ndarray:
        """P(R > x), x = 0, 1, ...: R the decode iterations a sequence found decoding at a random
        moment has left (the equilibrium residual of D: P(R > x) = E[(D - x)+] / E[D])."""
        d = self.decode.astype(int)
        at_least = np.cumsum(np.bincount(d)[::-1])[::-1]        # requests with D >= k, k = 0..max
        excess = np.cumsum(at_least[::-1])[::-1] - at_least     # sum over k > x of #(D >= k)
        return excess / max(d.sum(), 1)


class Iterations:
    """The mean iteration of a decode batch b while prompts start prefilling at r per iteration.

    The chunk budget C is a single FCFS server of prompt tokens (in iterations). Within a busy
    period of it every chunk is full (the next waiting prompt takes what the previous left of
    the budget) but the last, of the busy period's remainder, taken as a prompt's own last chunk
    ell = P - C (ceil(P / C) - 1). A busy period ends where a prompt finishes with none waiting:
    a share 1 - rho of prompts (as in M/G/1, where that share of departures leave the server
    empty), rho being the share of iterations that prefill. Per iteration, in expectation:

        last chunks  n_last = r (1 - rho)
        full chunks  n_full = (r Pbar - n_last E[ell]) / C           (the prompt tokens left)
        rho = n_full + n_last  =>  rho = (r Pbar / C + u) / (1 + u),  u = r (1 - E[ell] / C)

    and the mean iteration is T(b) + n_full dT(b, C) + n_last E[dT(b, ell)], dT being a chunk's
    time over the decode-only iteration T(b) at its own size (the iteration is memory-bound until
    its tokens reach the chip's ridge, then compute-bound, so a mean prefill of r Pbar tokens
    spread over every iteration would be too cheap). Joules likewise.
    """

    def __init__(self, step: Step, stream: Stream):
        self.step = step
        self.chunk = stream.chunk
        self.mean_prompt = float(stream.prompt.mean())
        self.mean_last = float(stream.last_chunk.mean())
        self.full_past = stream.full_chunk_past
        self.q_full, self.q_last, self.q_past = stream.quadrature()
        self._parts: dict[int, tuple] = {}

    def parts(self, b: int) -> tuple:
        """At a whole batch b: the decode-only (t, e), a full chunk's extra (t, e), a last
        chunk's mean extra (t, e), and the first two moments of a prompt's extra time when it
        prefills alone (its full chunks and its last)."""
        hit = self._parts.get(b)
        if hit is None:
            base = self.step(b, [], b) if b else (0.0, 0.0)
            full = self.step(b, [(self.chunk, self.full_past)], b)
            dfull = (full[0] - base[0], full[1] - base[1])
            lasts = np.array([self.step(b, [(int(q), int(p))], b + 1) for q, p in zip(self.q_last, self.q_past)])
            dlast_t, dlast_e = lasts[:, 0] - base[0], lasts[:, 1] - base[1]
            shot = self.q_full * dfull[0] + dlast_t
            hit = self._parts[b] = (base, dfull, (float(dlast_t.mean()), float(dlast_e.mean())),
                                    (float(shot.mean()), float((shot ** 2).mean())))
        return hit

    def chunks(self, r: float) -> tuple[float, float]:
        """(n_full, n_last): full and last prefill chunks per iteration at r prompts per iteration."""
        u = r * (1 - self.mean_last / self.chunk)
        rho = min((r * self.mean_prompt / self.chunk + u) / (1 + u), 1.0)
        n_last = r * (1 - rho)
        return (r * self.mean_prompt - n_last * self.mean_last) / self.chunk, n_last

    def mean(self, b: float, r: float) -> tuple[float, float]:
        """Mean seconds and joules of an iteration decoding b sequences (linear between whole
        batches) while r prompts per iteration start prefilling."""
        n_full, n_last = self.chunks(r)
        lo = max(int(math.floor(b)), 0)
        w = b - lo
        out = []
        for bi in (lo, lo + 1):
            (t0, e0), (tf, ef), (tl, el), _ = self.parts(bi)
            out.append((t0 + n_full * tf + n_last * tl, e0 + n_full * ef + n_last * el))
        return (1 - w) * out[0][0] + w * out[1][0], (1 - w) * out[0][1] + w * out[1][1]

    def slope(self, b: float, r: float) -> float:
        """Seconds per iteration per decoding sequence at a fixed prefill rate, over a batch
        span of one around b and never below a batch of one: ``parts(0)`` costs nothing (no
        iteration runs, no weights read), so a span reaching b = 0 would count the iteration's
        fixed cost as one sequence's marginal cost."""
        lo = max(b - 0.5, 1.0)
        hi = max(b + 0.5, lo + 1.0)
        return (self.mean(hi, r)[0] - self.mean(lo, r)[0]) / (hi - lo)


def clipped_variance_share(mean: float, cap: float) -> float:
    """Var[min(N, cap)] / Var[N] for N ~ Poisson(mean): how much of the batch's swings a cap leaves."""
    if mean <= 0:
        return 1.0
    cap = max(cap, 0.0)
    below = np.arange(0, int(math.ceil(cap)))              # N < cap; the rest sits at the cap
    p = np.exp(below * math.log(mean) - mean - np.array([math.lgamma(k + 1.0) for k in below]))
    x = np.append(below.astype(float), cap)
    p = np.append(p, max(1.0 - p.sum(), 0.0))
    mu = float((p * x).sum())
    return float((p * (x - mu) ** 2).sum() / mean)


def tpot_sigma(decode: np.ndarray, iteration_s: float, slope_s: float, share: float, dispersion: float,
               rate_per_s: float, shot: tuple[float, float]) -> np.ndarray:
    """The spread (seconds) of the TPOT of requests of ``decode`` iterations (D >= 1), the mean
    iteration being t = ``iteration_s`` and its slope t' = ``slope_s`` (seconds per decoding
    sequence; ``shot``: E[X] in seconds, E[X^2] in seconds squared).

    A request's TPOT is its D iterations' time over D. Other requests start as a Poisson
    process (rate lambda) and each adds to that time a shot: X_j, its prompt's chunks' extra time
    (when it starts within the request's life L = D t), plus (t'/t) x the overlap of its decode
    (S_j = D_j t long) with L, t' being the slope of the iteration in the batch at a fixed
    prefill rate. Campbell's theorem gives the variance of the sum, lambda E_j[integral over
    its start time a of the shot squared]:

        integral of overlap(a)^2 da            = s^2 l - s^3 / 3    (s, l: shorter, longer of L, S_j)
        integral of overlap(a) 1[a in L] da    = s L - s^2 / 2
        integral of 1[a in L] da               = L

    so Var = lambda (c^2 E[s^2 l - s^3/3] + 2 c E[X] E[s L - s^2/2] + k E[X^2] L), with X_j
    independent of D_j (a request's prompt, not its output, sets X) and sigma = sqrt(Var) / D.
    Where a cap holds the batch, its swings are clipped: c = sqrt(share) t'/t (share: the part
    of a Poisson batch's variance the cap leaves), and the sequences start as others finish, a
    renewal process per batch slot whose counts vary by the squared coefficient of variation of
    a life rather than by their mean: k = share + (1 - share) x dispersion.
    """
    t = iteration_s
    d, inverse = np.unique(decode, return_inverse=True)
    life = d[:, None] * t
    other = d[None, :] * t
    w = np.bincount(inverse, minlength=len(d)) / len(decode)
    s, l = np.minimum(other, life), np.maximum(other, life)
    batch = ((s ** 2 * l - s ** 3 / 3) * w[None, :]).sum(axis=1)
    cross = ((s * life - s ** 2 / 2) * w[None, :]).sum(axis=1)
    c = math.sqrt(share) * slope_s / t
    mean_x, mean_x2 = shot
    k = share + (1 - share) * dispersion
    var = rate_per_s * (c ** 2 * batch + 2 * c * mean_x * cross + k * mean_x2 * life[:, 0])
    return (np.sqrt(np.maximum(var, 0.0)) / d)[inverse]


def transient_batch(survival: np.ndarray, mean: float, unclipped: float, main_iterations: float,
                    x: np.ndarray) -> np.ndarray:
    """The expected number decoding at iterations ``x`` of a run that starts empty, admits for
    ``main_iterations`` and then drains. As an M/G/inf queue started empty (Takacs):
    lambda x integral over [0, x] of P(S > y) dy = unclipped x P(R <= x), R the equilibrium
    residual of a decode, at most ``mean`` (the cap); after admissions stop, the ``mean`` left
    end at their residual lives, so mean x P(R <= x - main_iterations) of them have gone."""
    x = np.asarray(x, dtype=float)
    filled = np.minimum(mean, unclipped * _residual_cdf(survival, x))
    return np.maximum(filled - mean * _residual_cdf(survival, x - main_iterations), 0.0)


def transient_area(survival: np.ndarray, mean: float, unclipped: float, main_iterations: float,
                   y: np.ndarray) -> np.ndarray:
    """The integral of ``transient_batch`` over [0, y] (the batch held over each whole
    iteration, linear within one), at the points ``y`` >= 0 only.

    P(R <= x) is 1 from the last index of ``survival`` on, so past it the fill is flat at
    min(mean, unclipped) until the drain starts, and once the drain has run as long as
    ``survival`` the batch stays at its floor; the batch is evaluated only where it varies (the
    first len(survival) iterations and as many from the drain's start) and the flat runs are
    counted by length: memory O(len(survival) + len(y)) however long the run."""
    y = np.asarray(y, dtype=float)
    n = len(survival)
    drain = int(math.ceil(main_iterations))
    # whole iterations where the batch varies; between and after, it is flat
    varying = np.union1d(np.arange(n), np.arange(max(n, drain), max(n, drain + n)))
    values = transient_batch(survival, mean, unclipped, main_iterations, varying)
    before = np.concatenate([[0.0], np.cumsum(values)])   # area of the varying iterations below
    flat = max(min(mean, unclipped), 0.0)                  # fill done, drain not begun
    floor = max(min(mean, unclipped) - mean, 0.0)          # drain done
    flat_run = (n, max(n, drain))
    floor_from = max(n, drain + n)

    def whole(k: np.ndarray) -> np.ndarray:   # area of iterations 0..k-1
        k = k.astype(float)
        return (before[np.searchsorted(varying, k)]
                + flat * np.clip(k - flat_run[0], 0, flat_run[1] - flat_run[0])
                + floor * np.maximum(k - floor_from, 0))

    k = np.floor(y)
    return whole(k) + (y - k) * (whole(k + 1) - whole(k))


def _residual_cdf(survival: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(R <= x) from P(R > k), k = 0, 1, ... (0 below zero, 1 past the longest)."""
    return np.where(x < 0, 0.0, 1.0 - np.interp(x, np.arange(len(survival)), survival, right=0.0))


_erf = np.frompyfunc(math.erf, 1, 1)


def preemptions_per_request(prompt: np.ndarray, output: np.ndarray, mean_decode: float) -> float:
    """Preemptions per request where paged admission keeps a full KV budget full.

    Free KV space F (tokens) after each admission: a request finishing frees P_f + O_f, the head
    of the queue takes its prompt P_h, and until the next finish (an exponential gap of 1/r
    iterations: r requests finish per iteration) the batch's b sequences grow by b tokens per
    iteration, b / r = D tokens in the mean. So F moves by steps of mean about zero and variance
    sigma^2 = Var P_f + Var P_h + Var O + D^2, held below the head's prompt (it is admitted once
    F reaches it): a driftless walk between walls W = Pbar apart. A reflected Brownian motion
    without drift on [0, W] is pushed at each wall at sigma^2 / (2 W) per step; at the lower wall a
    decode finds no free block and the newest sequence, holding about Pbar tokens, is preempted:
    sigma^2 / (2 Pbar^2) preemptions per request.
    """
    return float((2 * prompt.var() + output.var() + mean_decode ** 2) / (2 * prompt.mean() ** 2))


def mixture_quantile(mean: np.ndarray, sigma: np.ndarray, p: float, weight: np.ndarray | None = None) -> float:
    """The p-quantile of the mixture of Normal(mean_i, sigma_i^2), equal weights unless given
    (by bisection)."""
    if not len(mean):
        return 0.0
    weight = np.full(len(mean), 1.0 / len(mean)) if weight is None else weight / weight.sum()
    reach = QUANTILE_BRACKET_SIGMAS * float(sigma.max()) + 1e-12   # + 1e-12 s: a bracket where every sigma is 0
    lo, hi = float(mean.min()) - reach, float(mean.max()) + reach
    safe = np.where(sigma > 0, sigma, 1.0)
    for _ in range(QUANTILE_BISECTIONS):
        x = (lo + hi) / 2
        z = np.where(sigma > 0, (x - mean) / safe, np.where(x >= mean, np.inf, -np.inf))
        cdf = float((weight * 0.5 * (1 + _erf(z / math.sqrt(2)).astype(float))).sum())
        lo, hi = (x, hi) if cdf < p else (lo, x)
    return (lo + hi) / 2

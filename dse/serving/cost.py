"""Time and energy of one serving iteration (a prefill chunk plus a decode batch), from the engine.

An iteration runs every layer once over all its tokens. Its cost is the sum of parts,
each simulated by ``dse.sim.engine.simulate`` on one layer's ops and multiplied by the
layer count:

- the token-parallel part of a layer (norms, projections, MLP/MoE) over T tokens: the
  weights are read once whatever T is, so decode tokens and prefill chunks share them;
- the attention core of the decode batch: b sequences of mean KV length c;
- the attention core of each prefill chunk: q new tokens after p cached ones;
- once per iteration: the embedding gather of T tokens, the final norm and the LM head
  over the sequences that sample a token.

Each part is simulated at grid points (powers of two and 1.5 x powers of two) and
interpolated linearly between them (bilinearly over two sizes), so a run of thousands of
iterations costs a few hundred engine runs at most. Ops of one layer run one after another in the
engine (each depends on the previous), so the sum of the parts is the layer's time.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from dse.sim.engine import simulate
from dse.spec.architecture import Architecture
from dse.workloads.builder import Graph
from dse.workloads.models.llm import add_attention, add_embedding, add_head, add_token_block
from dse.workloads.models.llm_config import Formats, LlmShape


#: token counts at which the engine runs: 1, 2, 3, 4, 6, 8, 12, 16, 24, ...
GRID = tuple(sorted({2**i for i in range(48)} | {3 * 2**i for i in range(47)}))


def _bracket(points: tuple[int, ...], x: float) -> tuple[int, int, float]:
    """Grid points around x and x's weight on the upper one."""
    i = bisect_left(points, x)
    if points[i] == x or i == 0:
        return points[i], points[i], 0.0
    lo, hi = points[i - 1], points[i]
    return lo, hi, (x - lo) / (hi - lo)


class IterationCost:
    """Seconds and dynamic joules of serving iterations of one model on one architecture."""

    def __init__(self, arch: Architecture, shape: LlmShape, fmt: Formats):
        self.arch, self.shape, self.fmt = arch, shape, fmt
        self._points: dict[tuple, tuple[float, float]] = {}
        self._memo: dict[tuple, tuple[float, float]] = {}
        #: how many times the engine ran (grid points evaluated)
        self.engine_runs = 0
        self.static_power_w: float | None = None
        # one representative layer of each kind (dense, MoE) and how many layers it stands for
        kinds: dict[bool, list[int]] = {}
        for i in range(shape.layers):
            kinds.setdefault(shape.is_moe_layer(i), []).append(i)
        self.layer_kinds = [(idx[0], len(idx)) for idx in kinds.values()]
        # the chip's static power, read from one fixed engine run (not whichever runs first, so
        # that a run's energy does not depend on the order its iterations were costed in)
        self._token_point(self.layer_kinds[0][0], 1)

    # ---- engine runs at grid points -------------------------------------------------
    def _run(self, key: tuple, build: Callable[[Graph], None]) -> tuple[float, float]:
        hit = self._points.get(key)
        if hit is None:
            g = Graph(self.fmt.activations)
            build(g)
            summary = simulate(self.arch, g.workload(str(key), samples=1)).summary_row
            self.engine_runs += 1
            if self.static_power_w is None and summary["latency_s"] > 0:
                self.static_power_w = summary["static_energy_j"] / summary["latency_s"]
            hit = self._points[key] = (summary["latency_s"], summary["dynamic_energy_j"])
        return hit

    def _token_point(self, layer: int, tokens: int) -> tuple[float, float]:
        return self._run(("token", layer, tokens),
                         lambda g: add_token_block(g, self.shape, self.fmt, "", layer, tokens, None))

    def _attention_point(self, seqs: int, q: int, past: int) -> tuple[float, float]:
        return self._run(("attention", seqs, q, past),
                         lambda g: add_attention(g, self.shape, self.fmt, "", seqs, q, past, None))

    # ---- interpolation ----------------------------------------------------------------
    @staticmethod
    def _lin(f: Callable[[int], tuple[float, float]], x: float, points: tuple[int, ...] = GRID) -> tuple[float, float]:
        lo, hi, w = _bracket(points, x)
        a = f(lo)
        if w == 0.0:
            return a
        b = f(hi)
        return a[0] + w * (b[0] - a[0]), a[1] + w * (b[1] - a[1])

    def _bilin(self, f: Callable[[int, int], tuple[float, float]], x: float, y: float) -> tuple[float, float]:
        return self._lin(lambda xi: self._lin(lambda yi: f(xi, yi), y, GRID), x, GRID)

    def _memoised(self, key: tuple, compute: Callable[[], tuple[float, float]]) -> tuple[float, float]:
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = compute()
        return hit

    # ---- the parts of an iteration ----------------------------------------------------
    def tokens(self, n: int) -> tuple[float, float]:
        """Token-parallel part of every layer over ``n`` tokens."""
        def compute():
            t = e = 0.0
            for layer, count in self.layer_kinds:
                lt, le = self._lin(lambda x, layer=layer: self._token_point(layer, x), n)
                t, e = t + count * lt, e + count * le
            return t, e
        return self._memoised(("tokens", n), compute)

    def decode_attention(self, seqs: int, mean_past: float) -> tuple[float, float]:
        """Attention of every layer for ``seqs`` decoding sequences of mean cached length
        (rounded to a whole token)."""
        past = max(int(round(mean_past)), 1)
        return self._memoised(("decode", seqs, past), lambda: self._layers(
            self._bilin(lambda b, p: self._attention_point(b, 1, p), seqs, past)))

    def prefill_attention(self, q: int, past: int) -> tuple[float, float]:
        """Attention of every layer for one chunk of ``q`` prompt tokens after ``past`` cached ones."""
        if past == 0:
            return self._memoised(("prefill", q, 0), lambda: self._layers(
                self._lin(lambda x: self._attention_point(1, x, 0), q, GRID)))
        return self._memoised(("prefill", q, past), lambda: self._layers(
            self._bilin(lambda x, p: self._attention_point(1, x, p), q, past)))

    def embedding(self, tokens: int) -> tuple[float, float]:
        return self._memoised(("embed", tokens), lambda: self._lin(lambda x: self._run(
            ("embed", x), lambda g: add_embedding(g, self.shape, self.fmt, x)), tokens))

    def head(self, logits: int) -> tuple[float, float]:
        """Final norm and LM head for ``logits`` sampling sequences (nothing for none)."""
        if logits == 0:
            return 0.0, 0.0
        return self._memoised(("head", logits), lambda: self._lin(lambda x: self._run(
            ("head", x), lambda g: add_head(g, self.shape, self.fmt, x)), logits))

    def _layers(self, te: tuple[float, float]) -> tuple[float, float]:
        return self.shape.layers * te[0], self.shape.layers * te[1]

    def iteration(self, decode_seqs: int, decode_past_sum: int, chunks: list[tuple[int, int]],
                  logits: int) -> tuple[float, float]:
        """Seconds and dynamic joules of one iteration: ``decode_seqs`` sequences decoding one
        token each over ``decode_past_sum`` cached tokens in all, prefill ``chunks`` of
        (new tokens, cached tokens), ``logits`` sequences sampling a token."""
        n = decode_seqs + sum(q for q, _ in chunks)
        parts = [self.tokens(n), self.embedding(n), self.head(logits)]
        if decode_seqs:
            parts.append(self.decode_attention(decode_seqs, decode_past_sum / decode_seqs))
        parts += [self.prefill_attention(q, p) for q, p in chunks]
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

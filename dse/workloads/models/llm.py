"""Today's decoder LLMs: grouped-query attention, SwiGLU MLPs, MoE layers, separate number
formats for weights, activations and the KV cache.

A layer is built in two parts so that a serving scheduler can cost them apart: the
*token-parallel* part (norms, Q/K/V/O projections, MLP or MoE), whose work scales with
the tokens of an iteration and whose weights are read once per iteration however many
tokens share them; and the *attention core* (scores, softmax, context), whose work
scales with each sequence's own KV length.

Grouped-query attention is written the way GQA kernels run it: the ``heads/kv_heads``
query heads sharing one K,V head are stacked as rows of one GEMM against that head's
keys, so each K,V byte is read once per group (not once per query head). Causal
prefill counts the triangle: a chunk of q new tokens after c cached ones attends on
average over c + (q+1)/2 keys (FlashAttention skips masked blocks). Scores stay on
chip (FlashAttention, Dao et al., NeurIPS 2022).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from math import ceil, log2
from typing import Literal

from dse.errors import SpecError
from dse.workloads.builder import Deps, Graph, check_positive
from dse.workloads.models.llm_config import Formats, LlmShape, load_config
from dse.workloads.models.mlp import ACTIVATION_OPS
from dse.workloads.models.moe import expert_tokens
from dse.workloads.models.transformer import SOFTMAX_OPS
from dse.workloads.ops import Workload
from dse.workloads.registry import register

#: RMSNorm per element: square, accumulate, scale by 1/rms, scale by the gain (+ the rsqrt
#: amortised over the row)
RMSNORM_OPS = 4.0
#: rotary embedding per element of q and k: two multiplies and an add
ROPE_OPS = 3.0


def _w(fmt: Formats) -> dict:
    """Fields of a GEMM against weights stored in ``fmt.weights`` (compute at activations)."""
    return {"b_precision": fmt.weights}


def add_token_block(g: Graph, sh: LlmShape, fmt: Formats, p: str, layer: int, rows: int, deps: Deps,
                    core: Callable[[str], str] | None = None) -> str:
    """Norms, projections and the MLP/MoE of one layer for ``rows`` tokens; returns its last op.

    ``core(rope_op)`` appends the attention core after the rotary embedding and returns
    the op feeding the output projection; None builds the token-parallel part alone.
    """
    d, dh = sh.d_model, sh.d_head
    x = g.vector(p + "ln1", rows * d, deps, ops_per_element=RMSNORM_OPS, tag="norm")
    q = g.matmul(p + "q_proj", m=rows, n=sh.heads * dh, k=d, deps=x, tag="attention", **_w(fmt))
    kv = g.matmul(p + "kv_proj", m=rows, n=2 * sh.kv_heads * dh, k=d, deps=x, out_role="kv_cache",
                  out_precision=fmt.kv_cache, tag="attention", **_w(fmt))
    r = g.vector(p + "rope", rows * (sh.heads + sh.kv_heads) * dh, (q, kv), ops_per_element=ROPE_OPS,
                 tag="attention")
    o = g.matmul(p + "out_proj", m=rows, n=d, k=sh.heads * dh, deps=core(r) if core else r, tag="attention",
                 **_w(fmt))
    x = g.vector(p + "add1", rows * d, (o, deps) if deps else o, inputs=2, tag="residual")
    y = g.vector(p + "ln2", rows * d, x, ops_per_element=RMSNORM_OPS, tag="norm")
    if sh.is_moe_layer(layer):
        y = _moe(g, sh, fmt, p, layer, rows, y)
    else:
        y = _mlp(g, sh, fmt, p, rows, sh.d_ff, y)
    return g.vector(p + "add2", rows * d, (y, x), inputs=2, tag="residual")


def _mlp(g: Graph, sh: LlmShape, fmt: Formats, p: str, rows: int, d_ff: int, deps: Deps) -> str:
    """A (gated) MLP: SwiGLU = down(silu(gate(x)) * up(x)), gate and up as one GEMM."""
    d = sh.d_model
    if sh.gated:
        # silu(gate) * up is applied to each output tile of the gate/up GEMM as it leaves the
        # array (a fused gated-activation epilogue): the 2 x d_ff wide product is never stored
        y = g.matmul(p + "gate_up", m=rows, n=2 * d_ff, k=d, deps=deps, tag="ffn", on_chip=("out",), **_w(fmt))
        y = g.vector(p + "silu_mul", rows * d_ff, y, ops_per_element=ACTIVATION_OPS["silu"] + 1,
                     inputs=2, tag="ffn", on_chip=("in",))
    else:
        y = g.matmul(p + "up", m=rows, n=d_ff, k=d, deps=deps, tag="ffn", **_w(fmt))
        y = g.vector(p + "gelu", rows * d_ff, y, ops_per_element=ACTIVATION_OPS["gelu"], tag="ffn")
    return g.matmul(p + "down", m=rows, n=d, k=d_ff, deps=y, tag="ffn", **_w(fmt))


def _moe(g: Graph, sh: LlmShape, fmt: Formats, p: str, layer: int, rows: int, deps: Deps) -> str:
    """Router, top-k dispatch, the experts that receive tokens, shared expert, combine.

    Tokens spread evenly over experts (moe.expert_tokens with skew 0, seeded by the layer);
    an expert that receives no token reads no weights.
    """
    d = sh.d_model
    r = g.matmul(p + "router", m=rows, n=sh.experts, k=d, deps=deps, tag="router", **_w(fmt))
    topk = g.vector(p + "topk", rows * sh.experts, r, ops_per_element=6 + log2(max(sh.experts, 2)),
                    tag="router")
    routed = expert_tokens(rows, sh.experts, sh.top_k, 0.0, layer)
    if sh.capacity_factor > 0:
        cap = ceil(sh.capacity_factor * rows * sh.top_k / sh.experts)
        routed = [min(t, cap) for t in routed]
    disp = g.vector(p + "dispatch", sum(routed) * d, topk, tag="dispatch")
    outs = [_mlp(g, sh, fmt, f"{p}expert{e}.", t, sh.expert_d_ff, disp) for e, t in enumerate(routed) if t]
    if sh.shared_d_ff:
        outs.append(_mlp(g, sh, fmt, p + "shared.", rows, sh.shared_d_ff, deps))
    return g.vector(p + "combine", rows * d, outs or [disp], ops_per_element=2 * sh.top_k,
                    inputs=sh.top_k, tag="combine")


def add_attention(g: Graph, sh: LlmShape, fmt: Formats, p: str, seqs: int, q_len: int, past: int,
                  deps: Deps) -> str:
    """Attention core of ``seqs`` sequences, each with ``q_len`` new tokens after ``past``
    cached ones (decode: q_len 1); K and V are read from the KV cache in its format."""
    kv_len = past + ceil((q_len + 1) / 2)  # mean keys per query under the causal mask
    rows, count = q_len * sh.group, seqs * sh.kv_heads
    kv = {"b_role": "kv_cache", "b_precision": fmt.kv_cache}
    s = g.matmul(p + "scores", m=rows, n=kv_len, k=sh.d_head, count=count, deps=deps, tag="attention",
                 on_chip=("out",), **kv)
    s = g.vector(p + "softmax", seqs * sh.heads * q_len * kv_len, s, ops_per_element=SOFTMAX_OPS,
                 tag="attention", on_chip=("in", "out"))
    return g.matmul(p + "context", m=rows, n=sh.d_head, k=kv_len, count=count, deps=s, tag="attention",
                    on_chip=("a",), **kv)


def add_embedding(g: Graph, sh: LlmShape, fmt: Formats, tokens: int, deps: Deps = None) -> str:
    """Token embedding look-up: one scattered read of a d_model row (in the weights' format) per token."""
    row = max(1, int(sh.d_model * fmt_bytes(fmt.weights)))
    return g.vector("embed", tokens * sh.d_model, deps, in_role="embeddings", pattern="random",
                    access_bytes=row, a_precision=fmt.weights, tag="embedding")


def add_head(g: Graph, sh: LlmShape, fmt: Formats, logits: int, deps: Deps = None) -> str:
    """Final norm and LM head for the ``logits`` rows that sample a token (the last position
    of each sequence)."""
    x = g.vector("ln_f", logits * sh.d_model, deps, ops_per_element=RMSNORM_OPS, tag="norm")
    return g.matmul("lm_head", m=logits, n=sh.vocab, k=sh.d_model, deps=x, tag="lm_head", **_w(fmt))


def fmt_bytes(fmt: str) -> float:
    from dse.workloads.ops import PRECISION_BYTES

    return PRECISION_BYTES[fmt]


def check_context(sh: LlmShape, tokens: int, *, field: str = "seq") -> None:
    if tokens > sh.max_context:
        raise SpecError(f"{tokens} tokens exceed the model's context of {sh.max_context} "
                        f"(max_position_embeddings of {sh.name})", field=field)


@register("llm", "decoder LLM from a Hugging Face-style config.json (bundled: llama-3-8b, llama-3-70b, "
          "mixtral-8x7b, qwen1.5-moe-a2.7b), prefill of seq tokens or one decode step over seq cached "
          "tokens; GQA, SwiGLU, MoE; formats per role")
def llm(model: str = "llama-3-8b", phase: Literal["prefill", "decode"] = "decode", batch: int = 1,
        seq: int = 1024, precision: str = "bf16", weight_precision: str | None = None,
        kv_precision: str | None = None, capacity_factor: float | None = None) -> Workload:
    """One prefill pass or one decode step for ``batch`` sequences; samples = batch.

    ``precision`` is the activations' (and the GEMMs') format; weights and the KV cache
    default to it. Logits are computed for the last position of each sequence only.
    ``capacity_factor`` caps each expert's tokens of an MoE model (0: no limit).
    """
    check_positive(batch=batch, seq=seq)
    sh = load_config(model)
    if capacity_factor is not None:
        if capacity_factor < 0:
            raise SpecError(f"must be >= 0 (0: no limit), got {capacity_factor}", field="capacity_factor")
        sh = replace(sh, capacity_factor=capacity_factor)
    check_context(sh, seq + (phase == "decode"))
    fmt = Formats(weight_precision or precision, precision, kv_precision or precision)
    g = Graph(precision)
    rows = batch * (seq if phase == "prefill" else 1)
    q_len, past = (seq, 0) if phase == "prefill" else (1, seq)
    x = add_embedding(g, sh, fmt, rows)
    for i in range(sh.layers):
        p = f"layer{i}."
        x = add_token_block(g, sh, fmt, p, i, rows, x,
                            core=lambda r, p=p: add_attention(g, sh, fmt, p, batch, q_len, past, r))
    add_head(g, sh, fmt, batch, x)
    return g.workload("llm", samples=batch, params={
        "model": sh.name, "weight_bytes_model": sh.weight_bytes(fmt),
        "kv_bytes_per_token": sh.kv_bytes_per_token(fmt)})

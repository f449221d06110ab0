"""Transformer layers shared by the BERT and GPT generators.

Attention is written as two batched matmuls per (sequence, head): scores = Q K^T
and context = softmax(scores) V, whose operands are both activations (or the KV
cache, for decoders). LayerNorm, softmax, GELU and residual adds are vector ops.
"""
from __future__ import annotations

from dataclasses import dataclass

from dse.errors import SpecError
from dse.workloads.builder import Graph, check_positive
from dse.workloads.ops import PRECISION_BYTES

# Vector ops per element: softmax = max, subtract, exp, sum, divide (+ the 1/sqrt(d)
# scale); layernorm = mean, subtract, square, sum, rsqrt, scale, shift (~8); GELU's
# tanh approximation ~8.
SOFTMAX_OPS = 6.0
LAYERNORM_OPS = 8.0
GELU_OPS = 8.0


@dataclass(frozen=True)
class Shape:
    """Sizes of one transformer stack."""

    d_model: int
    heads: int
    d_ff: int

    @property
    def d_head(self) -> int:
        return self.d_model // self.heads


def check_shape(layers: int, d_model: int, heads: int, d_ff: int | None) -> Shape:
    """Validate the stack's sizes (d_ff defaults to 4 x d_model)."""
    d_ff = 4 * d_model if d_ff is None else d_ff
    check_positive(layers=layers, d_model=d_model, heads=heads, d_ff=d_ff)
    if d_model % heads:
        raise SpecError(f"d_model={d_model} is not divisible by heads={heads}", field="heads")
    return Shape(d_model, heads, d_ff)


def add_layer(g: Graph, p: str, sh: Shape, *, batch: int, q_len: int, kv_len: int, deps: str,
              kv_role: str, pre_ln: bool, fused_attention: bool = True) -> str:
    """Append one transformer layer and return the name of its last op.

    ``q_len`` new tokens per sequence attend over ``kv_len`` keys. With
    ``kv_role="kv_cache"`` the K,V projections are written to, and attention
    reads from, the KV cache; otherwise one fused QKV projection feeds attention.
    With ``fused_attention`` the scores and probabilities stay on chip, as in
    FlashAttention (Dao et al., NeurIPS 2022): same arithmetic, no score traffic.
    """
    fuse = {"on_chip": ("out",)} if fused_attention else {}
    fuse_mid = {"on_chip": ("in", "out")} if fused_attention else {}
    fuse_in = {"on_chip": ("a",)} if fused_attention else {}
    d, h, dh, f = sh.d_model, sh.heads, sh.d_head, sh.d_ff
    rows = batch * q_len
    x = deps
    if pre_ln:
        x = g.vector(p + "ln1", rows * d, x, ops_per_element=LAYERNORM_OPS, tag="layernorm")
    if kv_role == "kv_cache":
        q = g.matmul(p + "q_proj", m=rows, n=d, k=d, deps=x, tag="attention")
        kv = g.matmul(p + "kv_proj", m=rows, n=2 * d, k=d, deps=x, out_role="kv_cache",
                      tag="attention")
        qkv = (q, kv)
    else:
        qkv = g.matmul(p + "qkv", m=rows, n=3 * d, k=d, deps=x, tag="attention")
    s = g.matmul(p + "scores", m=q_len, n=kv_len, k=dh, count=batch * h, deps=qkv,
                 b_role=kv_role, tag="attention", **fuse)
    s = g.vector(p + "softmax", batch * h * q_len * kv_len, s, ops_per_element=SOFTMAX_OPS,
                 tag="attention", **fuse_mid)
    c = g.matmul(p + "context", m=q_len, n=dh, k=kv_len, count=batch * h, deps=s,
                 b_role=kv_role, tag="attention", **fuse_in)
    o = g.matmul(p + "out_proj", m=rows, n=d, k=d, deps=c, tag="attention")
    x = g.vector(p + "add1", rows * d, (o, deps), inputs=2, tag="residual")
    y = x
    if pre_ln:
        y = g.vector(p + "ln2", rows * d, y, ops_per_element=LAYERNORM_OPS, tag="layernorm")
    else:
        x = y = g.vector(p + "ln1", rows * d, x, ops_per_element=LAYERNORM_OPS, tag="layernorm")
    y = g.matmul(p + "ffn1", m=rows, n=f, k=d, deps=y, tag="ffn")
    y = g.vector(p + "gelu", rows * f, y, ops_per_element=GELU_OPS, tag="ffn")
    y = g.matmul(p + "ffn2", m=rows, n=d, k=f, deps=y, tag="ffn")
    y = g.vector(p + "add2", rows * d, (y, x), inputs=2, tag="residual")
    if not pre_ln:
        y = g.vector(p + "ln2", rows * d, y, ops_per_element=LAYERNORM_OPS, tag="layernorm")
    return y


def add_embedding(g: Graph, name: str, tokens: int, d_model: int) -> str:
    """Token embedding look-up: one random gather of a d_model row per token, plus position add."""
    row = max(1, int(d_model * PRECISION_BYTES[g.precision]))
    return g.vector(name, tokens * d_model, None, ops_per_element=1, in_role="embeddings",
                    pattern="random", access_bytes=row, tag="embedding")

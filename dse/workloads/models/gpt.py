"""GPT-style decoders (pre-LayerNorm), in prefill or single-token decode.

Prefill runs ``seq`` tokens per sequence through the stack and writes their K,V
to the KV cache; decode runs one new token per sequence attending over a KV
cache of ``seq`` tokens. Scores are counted in full (seq x seq) in prefill, as
dense kernels compute them before the causal mask. The LM head (tied to the
token embedding in GPT-2) is a matmul over every token in the step.
"""
from __future__ import annotations

from typing import Literal

from dse.workloads.builder import Graph, check_positive
from dse.workloads.models.transformer import LAYERNORM_OPS, add_embedding, add_layer, check_shape
from dse.workloads.ops import Workload
from dse.workloads.registry import register


@register("gpt", "GPT decoder, prefill or one decode step "
          "(defaults: GPT-2 small; d_ff=None means 4 x d_model)")
def gpt(layers: int = 12, d_model: int = 768, heads: int = 12, d_ff: int | None = None,
        vocab: int = 50257, seq: int = 1024, batch: int = 1,
        phase: Literal["prefill", "decode"] = "prefill", precision: str = "bf16",
        fused_attention: bool = True) -> Workload:
    """One prefill pass or one decode step for ``batch`` sequences; samples = batch (sequences).

    In decode, each sample yields one token, so samples/s is tokens/s.
    """
    check_positive(seq=seq, batch=batch, vocab=vocab)
    sh = check_shape(layers, d_model, heads, d_ff)
    q_len = seq if phase == "prefill" else 1
    rows = batch * q_len
    g = Graph(precision)
    x = add_embedding(g, "embed", rows, d_model)
    for i in range(layers):
        x = add_layer(g, f"layer{i}.", sh, batch=batch, q_len=q_len, kv_len=seq, deps=x,
                      kv_role="kv_cache", pre_ln=True, fused_attention=fused_attention)
    x = g.vector("ln_f", rows * d_model, x, ops_per_element=LAYERNORM_OPS, tag="layernorm")
    g.matmul("lm_head", m=rows, n=vocab, k=d_model, deps=x, tag="lm_head")
    return g.workload("gpt", samples=batch, params={"d_ff": sh.d_ff})

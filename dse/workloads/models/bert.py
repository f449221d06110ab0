"""BERT encoders (post-LayerNorm transformer): embedding look-up then ``layers`` layers.

The pooler and task head are left out; every MAC is in the encoder layers,
4·s·d² (QKV + output projections) + 2·s²·d (attention) + 2·s·d·d_ff (FFN) each.
"""
from __future__ import annotations

from dse.workloads.builder import Graph, check_positive
from dse.workloads.models.transformer import LAYERNORM_OPS, add_embedding, add_layer, check_shape
from dse.workloads.ops import Workload
from dse.workloads.registry import register


def bert(layers: int = 12, d_model: int = 768, heads: int = 12, d_ff: int | None = 3072,
         seq: int = 128, batch: int = 1, precision: str = "bf16", fused_attention: bool = True) -> Workload:
    """BERT inference on ``batch`` sequences of ``seq`` tokens; samples = batch (sequences)."""
    check_positive(seq=seq, batch=batch)
    sh = check_shape(layers, d_model, heads, d_ff)
    g = Graph(precision)
    x = add_embedding(g, "embed", batch * seq, d_model)
    x = g.vector("embed_ln", batch * seq * d_model, x, ops_per_element=LAYERNORM_OPS,
                 tag="layernorm")
    for i in range(layers):
        x = add_layer(g, f"layer{i}.", sh, batch=batch, q_len=seq, kv_len=seq, deps=x,
                      kv_role="activations", pre_ln=False, fused_attention=fused_attention)
    return g.workload("bert", samples=batch)


register("bert", "BERT encoder, sizes as parameters (defaults: BERT-base, seq 128)")(bert)
register("bert-base", "BERT-base encoder: 12 layers, d_model 768, 12 heads, d_ff 3072")(bert)
register("bert-large", "BERT-large encoder: 24 layers, d_model 1024, 16 heads, d_ff 4096",
         layers=24, d_model=1024, heads=16, d_ff=4096)(bert)

"""DLRM (the MLPerf recommendation model): bottom MLP on dense features, pooled
embedding look-ups, pairwise dot-product interaction, top MLP.

Defaults follow MLPerf's DLRM on Criteo: 13 dense features, bottom 13-512-256-128,
26 tables of dimension 128, top 1024-1024-512-256-1 on the 479 interaction outputs.
"""
from __future__ import annotations

from dse.errors import SpecError
from dse.workloads.builder import Graph, check_positive
from dse.workloads.models.mlp import add_mlp, parse_widths
from dse.workloads.ops import PRECISION_BYTES, Workload
from dse.workloads.registry import register


@register("dlrm", "DLRM recommender: embedding gathers, bottom/top MLPs, dot interaction")
def dlrm(batch: int = 2048, tables: int = 26, rows: int = 1_000_000, dim: int = 128,
         lookups: int = 1, bottom: list[int] | str = "13-512-256-128",
         top: list[int] | str = "1024-1024-512-256-1", precision: str = "fp16") -> Workload:
    """DLRM inference on ``batch`` samples; samples = batch.

    Each table look-up gathers ``lookups`` random rows of ``dim`` elements per sample
    and sum-pools them. The tables' total size (tables·rows·dim elements) is in
    ``params["embedding_table_bytes"]``; ops only carry the bytes they touch.
    """
    check_positive(batch=batch, tables=tables, rows=rows, dim=dim, lookups=lookups)
    bot = parse_widths(bottom, "bottom")
    top_w = parse_widths(top, "top")
    if bot[-1] != dim:
        raise SpecError(f"bottom MLP must end at the embedding dim {dim}, ends at {bot[-1]}",
                        field="bottom")
    eb = PRECISION_BYTES[precision]
    g = Graph(precision)
    x = add_mlp(g, "bottom.", bot, batch, "relu", None)
    gathers = []
    for t in range(tables):
        # elements = pooled outputs; each reads `lookups` rows (inputs) and sums them.
        gathers.append(g.vector(f"emb{t}", batch * dim, None, inputs=lookups,
                                ops_per_element=lookups, in_role="embeddings",
                                pattern="random", access_bytes=max(1, int(dim * eb)),
                                tag="embedding"))
    # Interaction: per sample, dot products of all F = tables + 1 feature vectors (F x dim
    # times dim x F); the F·(F-1)/2 distinct pairs are concatenated with the dense vector.
    f = tables + 1
    inter = g.matmul("interaction", m=f, n=f, k=dim, count=batch, deps=[x, *gathers],
                     b_role="activations", tag="interaction")
    top_in = dim + f * (f - 1) // 2
    add_mlp(g, "top.", [top_in, *top_w], batch, "relu", inter, last_activation=False)
    return g.workload("dlrm", samples=batch,
                      params={"embedding_table_bytes": tables * rows * dim * eb})

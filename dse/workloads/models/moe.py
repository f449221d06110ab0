"""One mixture-of-experts FFN layer: a router, top-k dispatch, per-expert FFNs, combine.

Tokens are spread over experts by a Zipf law of exponent ``skew`` over a
seed-chosen ranking of the experts (skew 0 = perfectly even), then clipped to each
expert's capacity ceil(capacity_factor · tokens · top_k / experts); the clipped
tokens are dropped, as in GShard/Switch. Experts that receive no token are omitted.
"""
from __future__ import annotations

from math import ceil, log2

from dse.errors import SpecError
from dse.workloads.builder import Graph, check_positive
from dse.workloads.models.mlp import ACTIVATION_OPS
from dse.workloads.ops import Workload
from dse.workloads.registry import register


def expert_tokens(tokens: int, experts: int, top_k: int, skew: float, seed: int) -> list[int]:
    """Tokens routed to each expert before capacity clipping (sums to tokens·top_k).

    Each token picks top_k distinct experts, so no expert gets more than ``tokens``.
    """
    import numpy as np  # on first use: importing the generators must not cost numpy's start-up

    rng = np.random.default_rng(seed)
    rank = rng.permutation(experts)  # which expert is the most popular depends on the seed
    weight = (rank + 1.0) ** -skew
    share = weight / weight.sum() * tokens * top_k
    counts = np.floor(share).astype(np.int64)
    # Largest remainders get the leftover tokens; ties go to the lower index (deterministic).
    leftover = tokens * top_k - int(counts.sum())
    order = np.lexsort((np.arange(experts), -(share - counts)))
    counts[order[:leftover]] += 1
    # Respect "at most one slot per token per expert": move overflow to the least loaded.
    for _ in range(experts):
        over = counts - tokens
        if (over <= 0).all():
            break
        excess = int(over[over > 0].sum())
        counts = np.minimum(counts, tokens)
        for i in np.argsort(counts, kind="stable"):
            take = min(excess, tokens - int(counts[i]))
            counts[i] += take
            excess -= take
            if not excess:
                break
    return [int(c) for c in counts]


@register("moe", "mixture-of-experts FFN layer: router, top-k, uneven per-expert FFNs")
def moe(tokens: int = 4096, d_model: int = 4096, d_ff: int = 14336, experts: int = 8,
        top_k: int = 2, capacity_factor: float = 1.25, skew: float = 0.0, seed: int = 0,
        activation: str = "silu", precision: str = "bf16") -> Workload:
    """One MoE layer over ``tokens`` tokens; samples = tokens.

    ``capacity_factor`` <= 0 means no capacity limit.
    """
    check_positive(tokens=tokens, d_model=d_model, d_ff=d_ff, experts=experts, top_k=top_k)
    if top_k > experts:
        raise SpecError(f"top_k={top_k} exceeds experts={experts}", field="top_k")
    if skew < 0:
        raise SpecError(f"must be >= 0, got {skew}", field="skew")
    if activation not in ACTIVATION_OPS:
        raise SpecError(f"unknown activation {activation!r} (known: {', '.join(ACTIVATION_OPS)})",
                        field="activation")
    routed = expert_tokens(tokens, experts, top_k, skew, seed)
    capacity = ceil(capacity_factor * tokens * top_k / experts) if capacity_factor > 0 else tokens
    kept = [min(c, capacity) for c in routed]

    g = Graph(precision)
    r = g.matmul("router", m=tokens, n=experts, k=d_model, tag="router")
    # softmax over experts then top-k selection: ~log2(E) compares per score plus softmax
    topk = g.vector("topk", tokens * experts, r, ops_per_element=6 + log2(max(experts, 2)),
                    tag="router")
    # Dispatch copies each kept token's activation to its expert's buffer.
    disp = g.vector("dispatch", sum(kept) * d_model, topk, tag="dispatch")
    outs = []
    for e, t in enumerate(kept):
        if t == 0:
            continue
        p = f"expert{e}."
        y = g.matmul(p + "up", m=t, n=d_ff, k=d_model, deps=disp, tag="expert")
        if ACTIVATION_OPS[activation]:
            y = g.vector(p + activation, t * d_ff, y, ops_per_element=ACTIVATION_OPS[activation],
                         tag="expert")
        outs.append(g.matmul(p + "down", m=t, n=d_model, k=d_ff, deps=y, tag="expert"))
    g.vector("combine", tokens * d_model, outs or [disp], ops_per_element=2 * top_k,
             inputs=top_k, tag="combine")
    return g.workload("moe", samples=tokens, params={
        "expert_tokens": kept, "dropped_tokens": sum(routed) - sum(kept), "capacity": capacity})

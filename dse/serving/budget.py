"""The KV-cache budget: what the tier holding the KV cache has left once the weights are in.

Kept in one function so that it can later come from the engine's allocator instead.
"""
from __future__ import annotations

from dse.errors import DesignError
from dse.spec.architecture import Architecture
from dse.units import fmt


def kv_budget_bytes(arch: Architecture, weight_bytes: float) -> float:
    """Bytes free for the KV cache on the tier it is placed on, after the model's weights.

    Weights fill their own tier first and spill into the following memory tiers in file
    order (as the engine places them); whatever of them lands on the KV cache's tier is
    subtracted from its capacity. Other activations' working space is not reserved.
    """
    kv_tier = arch.tier_of("kv_cache")
    sram = arch.sram_named(kv_tier)
    if sram is not None:
        capacity = {kv_tier: sram.capacity}
        order = [kv_tier]
    else:
        capacity = {m.name: m.capacity for m in arch.memories}
        order = [m.name for m in arch.memories]
    w_tier = arch.tier_of("weights")
    left = weight_bytes
    if w_tier in order:
        start = order.index(w_tier)
        for tier in order[start:] + order[:start]:
            take = min(left, capacity[tier])
            capacity[tier] -= take
            left -= take
            if left <= 0:
                break
    if left > 0:
        tiers = ", ".join(f"{m.name}: {fmt(m.capacity, 'bytes')}" for m in arch.memories)
        raise DesignError(f"the model's weights ({fmt(weight_bytes, 'bytes')}) exceed every memory tier ({tiers})")
    return capacity[kv_tier]


def kv_blocks(arch: Architecture, weight_bytes: float, kv_bytes_per_token: float, block_tokens: int) -> int:
    """Paged KV-cache blocks of ``block_tokens`` tokens that fit the budget; at least one."""
    budget = kv_budget_bytes(arch, weight_bytes)
    block = kv_bytes_per_token * block_tokens
    blocks = int(budget // block)
    if blocks < 1:
        raise DesignError(f"KV-cache budget on '{arch.tier_of('kv_cache')}' ({fmt(max(budget, 0.0), 'bytes')} "
                          f"after {fmt(weight_bytes, 'bytes')} of weights) is below one block of "
                          f"{block_tokens} tokens ({fmt(block, 'bytes')})")
    return blocks


def margin_bytes(arch: Architecture, spec) -> float:
    """Bytes missing for ``spec``'s model and one KV block (<= 0: it fits), for ``fits_memory``."""
    shape, fmt = spec.shape(), spec.formats
    weights = shape.weight_bytes(fmt)
    block = shape.kv_bytes_per_token(fmt) * spec.block_tokens
    try:
        return block - kv_budget_bytes(arch, weights)
    except DesignError:  # the weights alone exceed every tier
        return weights + block - sum(m.capacity for m in arch.memories)

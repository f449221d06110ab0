"""LLM serving on one chip: request streams, continuous batching with chunked prefill and a
paged KV cache, and the latency, throughput and energy metrics of a run.

    from dse.serving import ServingSpec, simulate_serving
    result = simulate_serving(load_architecture("h100-class"), ServingSpec(model="llama-3-8b", rate=4))
    result.summary        # one row: ttft_p99_s, tpot_p50_s, tokens_per_j, goodput, ...
    result.requests       # one row per request

Names are imported on first use, so that ``dse --help`` stays free of pandas and the engine.
"""
from __future__ import annotations

import importlib

_HOMES = {
    "ServingResult": "dse.serving.run", "simulate_serving": "dse.serving.run",
    "IterationCost": "dse.serving.cost",
    "kv_blocks": "dse.serving.budget", "kv_budget_bytes": "dse.serving.budget",
    "Request": "dse.serving.requests",
    "PARAM_PREFIX": "dse.serving.spec", "ServingSpec": "dse.serving.spec", "is_serving_spec": "dse.serving.spec",
    "parse_serving_spec": "dse.serving.spec", "split_serving": "dse.serving.spec",
    "SERVING_METRICS": "dse.results",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(name)

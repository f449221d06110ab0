"""Number formats and tensor roles: the vocabulary that workloads, specs and the engine share.

It sits below them all (workloads know no machine, specs know no workload), so each of
them may name a precision or a role without importing the other.
"""
from __future__ import annotations

#: Bytes per element of each supported precision.
PRECISION_BYTES: dict[str, float] = {
    "int4": 0.5,
    "int8": 1.0,
    "fp8": 1.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp32": 4.0,
}

ROLES = ("weights", "activations", "kv_cache", "embeddings", "optimizer_state", "gradients")

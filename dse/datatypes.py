"""Number formats and tensor roles: the vocabulary that workloads, specs and the engine share.

It sits below them all (workloads know no machine, specs know no workload), so each of
them may name a precision or a role without importing the other.
"""
from __future__ import annotations

#: Bytes per element of each supported number format. ``fp8`` is either 8-bit float
#: format where the difference does not matter; ``fp8_e4m3`` and ``fp8_e5m2`` are the two
#: OCP FP8 formats (Micikevicius et al., "FP8 Formats for Deep Learning", 2022) and
#: ``fp4`` is OCP MX FP4 (E2M1, OCP Microscaling Formats v1.0, 2023) without its shared
#: scale (one byte per 32 elements, i.e. +3%, left out as for int4's group scales).
PRECISION_BYTES: dict[str, float] = {
    "int4": 0.5,
    "fp4": 0.5,
    "int8": 1.0,
    "fp8": 1.0,
    "fp8_e4m3": 1.0,
    "fp8_e5m2": 1.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp32": 4.0,
}

ROLES = ("weights", "activations", "kv_cache", "embeddings", "optimizer_state", "gradients")

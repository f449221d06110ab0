"""Kind ``memory``: replay a synthetic access pattern through a memory technology's model.

The pattern stands for the microbenchmark that was measured (a STREAM-like sequential
sweep, random accesses of a given size over a footprint); it is replayed with
``dse.sim.replay.replay`` on ``units`` DIMMs, channels or stacks of a technology from
the library, with ``overrides`` for the fields of the measured part that differ from
the library entry (a data rate: a datasheet's bandwidth per unit).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from dse.spec.quantities import Bytes
from dse.validate.case import CaseBase


#: STREAM kernels as the arrays each element step reads and writes (McCalpin's STREAM:
#: copy a[i] = b[i], scale a[i] = q b[i], add a[i] = b[i] + c[i], triad a[i] = b[i] + q c[i])
KERNELS: dict[str, tuple[bool, ...]] = {
    "read": (False,), "write": (True,),
    "copy": (False, True), "scale": (False, True), "add": (False, False, True), "triad": (False, False, True),
}


class Pattern(BaseModel):
    """Accesses of one size, sequential or uniformly random over a footprint.

    ``op`` is ``read`` or ``write``, or a STREAM kernel (``copy``, ``scale``, ``add``,
    ``triad``): one sequential stream per array, each in its own ``footprint``-sized
    region, interleaved element step by element step (reads, then the write).
    """

    model_config = ConfigDict(extra="forbid")

    access: Literal["sequential", "random"] = "sequential"
    op: Literal["read", "write", "copy", "scale", "add", "triad"] = "read"
    size: Bytes = 64.0
    count: int = Field(default=200_000, gt=0, le=5_000_000)
    footprint: Bytes = 2.0**30
    seed: int = 0


class Case(CaseBase):
    METRICS = {"achieved_bandwidth_bps": "bandwidth", "time_s": "time"}

    kind: Literal["memory"]
    memory: str = Field(min_length=1, description="technology name (dse list memories)")
    units: int = Field(default=1, gt=0)
    overrides: dict[str, Any] = {}
    pattern: Pattern = Pattern()


def accesses(p: Pattern) -> pd.DataFrame:
    """The pattern as a trace frame (the columns ``parse_memtrace`` returns)."""
    size = int(p.size)
    arrays = KERNELS[p.op]
    i = np.arange(p.count, dtype=np.int64)
    array = i % len(arrays)                 # which array this access touches
    step = (i // len(arrays)).astype(np.uint64)
    if p.access == "sequential":
        offset = step * np.uint64(size)
    else:
        slots = max(1, int(p.footprint) // size)
        rng = np.random.default_rng(p.seed)
        offset = rng.integers(0, slots, size=p.count, dtype=np.uint64) * np.uint64(size)
    address = array.astype(np.uint64) * np.uint64(int(p.footprint)) + offset
    df = pd.DataFrame({"time": i, "address": address,
                       "is_write": np.asarray(arrays)[array],
                       "size": np.full(p.count, size, dtype=np.int64)})
    df.attrs["timed"] = False
    return df


def evaluate(case: Case, base: Path) -> float:
    from dse.sim.replay import replay
    from dse.spec.architecture import MemoryTier
    from dse.tech.library import technology
    from dse.tech.models import tier_model

    technology(case.memory)  # one clear line for an unknown name
    tier = MemoryTier.model_validate({"name": case.memory, "technology": case.memory,
                                      "channels": case.units, **case.overrides})
    out = replay(accesses(case.pattern), tier_model(tier))
    return float(out[case.metric])

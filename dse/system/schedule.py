"""Pipeline schedules: the order in which each stage runs forward (F) and backward (B)
passes of micro-batches through its model chunks.

1F1B (PipeDream-Flush; Narayanan et al., SC'21, the method): stage s runs p - s - 1 forward
passes to fill the pipeline, then alternates one forward and one backward, then drains.
With uniform pass times the step takes (m + p - 1)(t_f + t_b): the bubble is
(p - 1) / (m + p - 1) of it.

Interleaved 1F1B: each stage holds v chunks (model chunk c·p + s); forward passes go
through the chunks in groups of p micro-batches; the bubble shrinks v-fold, to
(p - 1) / (v·m + p - 1) of the step. Needs m divisible by p.
"""
from __future__ import annotations

from dataclasses import dataclass

from dse.errors import DesignError


@dataclass(frozen=True)
class Task:
    phase: str        # "F" or "B"
    chunk: int        # local chunk on this stage (0..v-1)
    micro: int        # micro-batch

    def model_chunk(self, stage: int, stages: int) -> int:
        return self.chunk * stages + stage


def order(stage: int, stages: int, micro: int, virtual: int = 1) -> list[Task]:
    """The tasks of pipeline stage ``stage`` in the order it runs them."""
    p, m, v = stages, micro, virtual
    if v == 1:
        warm = min(p - stage - 1, m)
        fwd = [Task("F", 0, i) for i in range(m)]
        bwd = [Task("B", 0, i) for i in range(m)]
        return _interleave(fwd, bwd, warm)
    if m % p:
        raise DesignError(f"the interleaved schedule needs micro_batches ({m}) divisible by pipeline ({p})")
    total = m * v

    def fwd_task(k: int) -> Task:
        return Task("F", (k // p) % v, (k // (p * v)) * p + k % p)

    def bwd_task(k: int) -> Task:
        return Task("B", v - 1 - (k // p) % v, (k // (p * v)) * p + k % p)

    warm = min((p - stage - 1) * 2 + (v - 1) * p, total)
    return _interleave([fwd_task(k) for k in range(total)], [bwd_task(k) for k in range(total)], warm)


def _interleave(fwd: list[Task], bwd: list[Task], warm: int) -> list[Task]:
    out = fwd[:warm]
    rest = len(fwd) - warm
    for i in range(rest):
        out.append(fwd[warm + i])
        out.append(bwd[i])
    out.extend(bwd[rest:])
    return out


def peak_in_flight(tasks: list[Task]) -> int:
    """Most micro-batch chunks whose forward has run and backward has not (activations held)."""
    live = peak = 0
    for t in tasks:
        live += 1 if t.phase == "F" else -1
        peak = max(peak, live)
    return peak

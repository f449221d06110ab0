"""simulate_serving(arch, spec): a request stream served on one chip, and its result tables."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from dse.serving.budget import kv_blocks
from dse.serving.cost import IterationCost
from dse.serving.metrics import request_table, run_summary
from dse.serving.requests import Request, check_context, check_requests
from dse.serving.scheduler import RunLog, SchedulerConfig, run_disaggregated, run_server
from dse.serving.spec import ServingSpec
from dse.spec.architecture import Architecture
from dse.tech.memory import BITS

#: iteration costs of recent (architecture, model, formats), so that trials varying only the
#: scheduler's knobs reuse the engine runs
_COSTS: dict[tuple, IterationCost] = {}


@dataclass
class ServingResult:
    architecture: str
    spec: ServingSpec
    summary_row: dict
    requests: pd.DataFrame
    log: RunLog = field(repr=False)
    #: the engine runs behind the iteration costs (grid points)
    engine_runs: int = 0

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary_row])

    def __getitem__(self, metric: str):
        return self.summary_row[metric]


def _swap_costs(arch: Architecture) -> tuple[float | None, float]:
    """Seconds and joules per byte to copy KV out to the tier after the KV cache's and back."""
    order = [m.name for m in arch.memories]
    home = arch.tier_of("kv_cache")
    if home not in order or order.index(home) + 1 >= len(order):
        return None, 0.0
    a, b = arch.memories[order.index(home)], arch.memories[order.index(home) + 1]
    per_byte_s = 1.0 / min(a.bandwidth, b.bandwidth)
    per_byte_j = BITS * (a.read_energy + b.write_energy)
    return per_byte_s, per_byte_j


def simulate_serving(arch: Architecture, spec: ServingSpec, cost: IterationCost | None = None,
                     requests: list[Request] | None = None) -> ServingResult:
    """Serve ``spec``'s request stream (or ``requests``) on ``arch``; ``cost`` reuses the engine
    runs of an earlier call with the same architecture, model and formats."""
    from dse.errors import DesignError

    shape = spec.shape()
    fmt = spec.formats
    if requests is None:
        requests = spec.stream(shape)
    else:
        check_requests(requests)
        check_context(requests, shape.max_context, shape.name)
    blocks = kv_blocks(arch, shape.weight_bytes(fmt), shape.kv_bytes_per_token(fmt), spec.block_tokens)
    swap_s, swap_j = _swap_costs(arch)
    if spec.preemption == "swap" and swap_s is None:
        raise DesignError(f"preemption: swap needs a memory tier after '{arch.tier_of('kv_cache')}' to swap to")
    cfg = SchedulerConfig(batch_cap=spec.batch_cap, chunk_tokens=spec.chunk_tokens, block_tokens=spec.block_tokens,
                          total_blocks=blocks, admission=spec.admission, preemption=spec.preemption,
                          swap_s_per_byte=swap_s, swap_j_per_byte=swap_j,
                          kv_bytes_per_token=shape.kv_bytes_per_token(fmt))
    if cost is None:
        key = (arch.model_dump_json(), shape, fmt)
        cost = _COSTS.get(key)
        if cost is None:
            if len(_COSTS) >= 8:
                _COSTS.pop(next(iter(_COSTS)))
            cost = _COSTS[key] = IterationCost(arch, shape, fmt)
    chips = 2 if spec.disaggregated else 1
    if spec.disaggregated:
        log = _merge(*run_disaggregated(cfg, cfg, cost, requests, spec.kv_link_bytes_per_s))
    else:
        log = run_server(cfg, cost, requests)
    table = request_table(log)
    row = {"architecture": arch.name, "workload": spec.label, "chips": chips}
    static_w = cost.static_power_w if cost.static_power_w is not None else arch.static_power_w
    row.update(run_summary(log, table, static_power_w=chips * static_w, chips=chips,
                           slo_ttft_s=spec.slo_ttft_s, slo_tpot_s=spec.slo_tpot_s))
    row["kv_blocks"] = blocks
    row["kv_budget_bytes"] = blocks * spec.block_tokens * shape.kv_bytes_per_token(fmt)
    row["weight_bytes"] = shape.weight_bytes(fmt)
    row["area_mm2"] = chips * arch.area_mm2
    return ServingResult(arch.name, spec, row, table, log, cost.engine_runs)


def _merge(prefill: RunLog, decode: RunLog) -> RunLog:
    """One log for a prefill chip and a decode chip: their work and energy added, the cache
    figures of the decode chip (where sequences stay longest)."""
    return RunLog(prefill.sequences, iterations=prefill.iterations + decode.iterations,
                  peak_running=decode.peak_running, peak_blocks=decode.peak_blocks,
                  preemptions=prefill.preemptions + decode.preemptions,
                  dynamic_energy_j=prefill.dynamic_energy_j + decode.dynamic_energy_j,
                  busy_s=prefill.busy_s + decode.busy_s, end_s=max(prefill.end_s, decode.end_s))

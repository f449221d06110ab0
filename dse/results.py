"""Simulation results as pandas tables; the metric names are defined here, once."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# Summary metrics (columns) shared by the engine, the search and the reports.
LATENCY = "latency_s"
THROUGHPUT_OPS = "throughput_ops_per_s"
THROUGHPUT_SAMPLES = "throughput_samples_per_s"
ENERGY = "energy_j"
AVG_POWER = "avg_power_w"
TOPS_PER_W = "tops_per_w"
AREA = "area_mm2"
BOUND = "bound"
ENERGY_PER_SAMPLE = "energy_per_sample_j"

CORE_METRICS = [LATENCY, THROUGHPUT_OPS, THROUGHPUT_SAMPLES, ENERGY, AVG_POWER, TOPS_PER_W, AREA,
                ENERGY_PER_SAMPLE]


def energy_col(component: str) -> str:
    return f"energy_{component}_j"


def busy_col(resource: str) -> str:
    return f"busy_{resource}"


def bytes_read_col(tier: str) -> str:
    return f"bytes_read_{tier}"


def bytes_written_col(tier: str) -> str:
    return f"bytes_written_{tier}"


def peak_bytes_col(storage: str) -> str:
    """Largest number of bytes an SRAM or memory tier holds at once (the allocator's count)."""
    return f"peak_bytes_{storage}"


#: Bytes beyond what the memories hold (> 0: the design cannot run the workload; <= 0:
#: minus the bytes left free at the fullest moment). ``fits_memory`` is this <= 0.
CAPACITY_MARGIN = "capacity_margin_bytes"


# Serving runs (dse.serving): per-request latencies and their percentiles (ttft_p99_s, ...),
# output tokens per second and per joule, requests per second meeting the SLOs.
TTFT = "ttft_s"
TPOT = "tpot_s"
E2E = "e2e_s"
TOKENS_PER_S = "throughput_tokens_per_s"
REQUESTS_PER_S = "throughput_requests_per_s"
TOKENS_PER_J = "tokens_per_j"
GOODPUT = "goodput_requests_per_s"
SLO_ATTAINMENT = "slo_attainment"
PERCENTILES = (50, 90, 99)


def percentile_col(metric: str, p: int) -> str:
    """``ttft_s``, 99 -> ``ttft_p99_s``."""
    return f"{metric[:-2]}_p{p}_s"


def mean_col(metric: str) -> str:
    """``tpot_s`` -> ``tpot_mean_s`` (the mean over a run's requests)."""
    return f"{metric[:-2]}_mean_s"


SERVING_METRICS = {
    TOKENS_PER_S: "maximize", REQUESTS_PER_S: "maximize", TOKENS_PER_J: "maximize", GOODPUT: "maximize",
    SLO_ATTAINMENT: "maximize",
    **{percentile_col(m, p): "minimize" for m in (TTFT, TPOT, E2E) for p in PERCENTILES},
    **{mean_col(m): "minimize" for m in (TTFT, TPOT, E2E)},
}


#: Metrics a study may optimise or constrain (plus the per-component families above).
OBJECTIVE_METRICS = {
    LATENCY: "minimize", THROUGHPUT_OPS: "maximize", THROUGHPUT_SAMPLES: "maximize",
    ENERGY: "minimize", AVG_POWER: "minimize", TOPS_PER_W: "maximize", AREA: "minimize",
    ENERGY_PER_SAMPLE: "minimize", **SERVING_METRICS,
}


@dataclass
class Result:
    """The outcome of simulating one workload on one architecture."""

    architecture: str
    workload: str
    summary_row: dict
    op_rows: list[dict] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    #: wall-clock seconds spent planning and simulating (not part of any table)
    timing: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a NaN or infinite metric comes from an input at the edge of the float range (a
        # bandwidth of 5e-324 B/s, 1e300 J per MAC): an error, never a table row
        # (only the physical totals: a wear-out lifetime is infinite where nothing is written)
        for key, value in self.summary_row.items():
            if key not in OBJECTIVE_METRICS and not key.startswith(("energy_", "busy_")):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                from dse.errors import DesignError

                raise DesignError(f"would be {value} on workload '{self.workload}': a clock, "
                                  f"bandwidth, energy or size of the design is out of the range that "
                                  f"can be computed", where=self.architecture, field=key)

    @property
    def summary(self) -> "pd.DataFrame":
        """One row: architecture, workload and every summary metric."""
        import pandas as pd  # on first use: pandas alone costs more CPU than a `dse run`

        return pd.DataFrame([self.summary_row])

    @property
    def ops(self) -> "pd.DataFrame":
        """One row per op, in workload order."""
        import pandas as pd

        return pd.DataFrame(self.op_rows)

    def __getitem__(self, metric: str):
        return self.summary_row[metric]


# ---- systems of many chips (dse.system) ------------------------------------------------
STEP_TIME = "step_time_s"
COMM_TIME = "comm_time_s"            # communication the slowest chip waits for (not hidden)
COMM_ENERGY = "comm_energy_j"        # links and switches: per bit moved plus static
COMM_BYTES = "comm_bytes"            # bytes chips sent
SCALING_EFFICIENCY = "scaling_efficiency"   # throughput / (chips x one chip's throughput)
MFU = "mfu"                          # model FLOPs / (step time x chips x peak FLOP/s)
MEMORY_PER_CHIP = "memory_per_chip_bytes"
SYSTEM_METRICS = {STEP_TIME: "minimize", COMM_TIME: "minimize", COMM_ENERGY: "minimize",
                  SCALING_EFFICIENCY: "maximize", MFU: "maximize", MEMORY_PER_CHIP: "minimize"}
OBJECTIVE_METRICS.update(SYSTEM_METRICS)


def link_col(link_type: str, what: str) -> str:
    """``link_<type>_<what>``: utilisation, bytes or energy_j of one link type."""
    return f"link_{link_type}_{what}"


def switch_col(switch: str) -> str:
    """``<switch>_energy_j``: energy of the bits crossing a switch (``switch``, ``intra_switch``
    or ``inter_switch``: per bit x its hops). With the ``link_<type>_energy_j`` columns and
    ``comm_static_energy_j`` it makes up ``comm_energy_j``."""
    return f"{switch}_energy_j"

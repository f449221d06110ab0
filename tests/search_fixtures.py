"""A chip and studies small enough to reason about by hand, for the search tests.

The chip ("knee") is one square systolic array fed by DRAM with no dynamic
energy: its power is leakage only, P(R) = 20 W (control) + 20 W * R^2 / 256^2
(the array), so TOPS/W = ops / (P(R) * latency). A GEMM whose weights stream
from DRAM once is compute-bound for small arrays and bandwidth-bound for big
ones; TOPS/W peaks at the knee of that roofline.
"""
from __future__ import annotations

from math import ceil
from pathlib import Path

import yaml

CHIP = {
    "name": "knee",
    "compute": [{
        "name": "pe", "kind": "systolic", "rows": 64, "cols": 64, "clock": "1 GHz",
        "dataflow": "weight_stationary", "macs_per_cycle": {"int8": 1},
        "energy_per_mac": {"int8": "0 pJ"}, "leakage": "1 W", "area": "1 mm^2", "buffer": "buf",
    }],
    "sram": [
        # a small staging buffer (many tiles, so transfers and compute overlap) ...
        {"name": "buf", "capacity": "512 KiB", "bandwidth": "1000 TB/s",
         "read_energy": "0 pJ/bit", "write_energy": "0 pJ/bit"},
        # ... and a big one holding the activations, never the bottleneck
        {"name": "act", "capacity": "256 MiB", "bandwidth": "1000 TB/s",
         "read_energy": "0 pJ/bit", "write_energy": "0 pJ/bit"},
    ],
    "memories": [{"name": "dram", "capacity": "4 GiB", "channels": 1, "bandwidth_per_channel": "10 GB/s",
                  "read_energy": "0 pJ/bit", "write_energy": "0 pJ/bit", "background_power": "0 W"}],
    "placement": {"weights": "dram", "activations": "act"},
    "static": [{"name": "ctrl", "leakage": "20 W"}],
}

M, K, N = 4096, 16384, 16384
GEMM = f"gemm:m={M},n={N},k={K}"
CLOCK_HZ = 1e9
DRAM_BPS = 10e9
P_CTRL_W = 20.0
P_PE_W = 20.0 / 65536


def power_w(rows: int) -> float:
    return P_CTRL_W + P_PE_W * rows * rows


def tops_per_w(rows: int) -> float:
    """Roofline of a weight-stationary R x R array (SCALE-Sim fold timing) against DRAM.

    Compute: ceil(K/R) * ceil(N/R) folds of 2R + R + M - 2 cycles; memory: the
    K x N int8 weights once over the DRAM bus; the slower of the two sets the time.
    """
    compute_s = ceil(K / rows) * ceil(N / rows) * (3 * rows + M - 2) / CLOCK_HZ
    memory_s = K * N / DRAM_BPS
    return 2 * M * N * K / (power_w(rows) * max(compute_s, memory_s)) / 1e12


def study(**changes) -> dict:
    """A study of the knee chip: array size searched, cols and leakage derived."""
    base = {
        "name": "knee",
        "architecture": "chip.yaml",
        "workloads": [GEMM],
        "parameters": {"compute.pe.rows": {"low": 32, "high": 512, "step": 8}},
        "derived": {"compute.pe.cols": "rows", "compute.pe.leakage": "20 * rows * cols / 65536"},
        "sampler": "tpe",
        "seed": 0,
        "n_trials": 10,
    }
    base.update(changes)
    return base


def write(tmp: Path, spec: dict, chip: dict | None = None, name: str = "study.yaml") -> Path:
    """The chip as tmp/chip.yaml and the study as tmp/<name>; returns the study path."""
    (tmp / "chip.yaml").write_text(yaml.safe_dump(chip or CHIP, sort_keys=False))
    path = tmp / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path

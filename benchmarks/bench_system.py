"""A 3D-parallel training step of a GPT-3-175B-shaped model on 1,024 chips.

    python benchmarks/bench_system.py            # prints wall seconds and the step's figures

GPT-3 175B's shape (Brown et al., 2020, Table 2.1): 96 layers, d_model 12288, 96 heads,
2048-token context; vocabulary 51,200 (50,257 padded). 128 DGX H100-class nodes
(systems/dgx-h100-ib.yaml scaled to 1,024 chips), tensor 8 x pipeline 16 x data 8, 64
micro-batches of one sequence per pipeline (global batch 512), sequence parallelism,
selective recomputation, ZeRO-1. Target: under 5 s on 2 cores (issue 11).
"""
from __future__ import annotations

import argparse
import time

from dse.system import SystemSpec, load_system, simulate_system

MODEL = "gpt:layers=96,d_model=12288,heads=96,seq=2048,batch=1,vocab=51200"
PARALLELISM = {"data": 8, "tensor": 8, "pipeline": 16, "micro_batches": 64, "sequence": True,
               "recompute": "selective", "zero": 1}


def system_of(chips: int) -> SystemSpec:
    doc = load_system("dgx-h100-ib").spec.model_dump()
    doc["chips"][0]["count"] = chips
    doc["parallelism"] = PARALLELISM
    return SystemSpec.model_validate(doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs; the fastest is reported")
    args = ap.parse_args()
    spec = system_of(1024)
    best, r = float("inf"), None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        r = simulate_system(spec, MODEL)
        best = min(best, time.perf_counter() - t0)
    s = r.summary_row
    print(f"GPT-3-175B-shaped training step on {s['chips']} chips "
          f"(tensor {s['tensor']} x pipeline {s['pipeline']} x data {s['data']}, {s['micro_batches']} micro-batches)")
    print(f"  simulated in {best:.2f} s wall (best of {args.repeat}; target < 5 s on 2 cores); "
          f"{r.timing['roles']} engine runs, {r.timing['explicit_chips']} chips simulated, {s['sim_events']:,} events")
    print(f"  step {s['step_time_s']:.3f} s, {s['throughput_samples_per_s']:.1f} sequences/s, MFU {s['mfu']:.1%}, "
          f"scaling efficiency {s['scaling_efficiency']:.1%}, pipeline bubble {s['pipeline_bubble']:.1%}")
    print(f"  communication waited {s['comm_time_s']:.3f} s, {s['comm_energy_j'] / 1e3:.1f} kJ of "
          f"{s['energy_j'] / 1e3:.1f} kJ per step; memory per chip {s['memory_per_chip_bytes'] / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()

"""Serving speed: ten simulated minutes at 10 requests/s (6,000 requests) on one chip.

Llama-3-8B on the bundled h100-class design, Poisson arrivals, prompts of 128-1024 and
outputs of 32-256 tokens (uniform). Prints the wall time, split into the engine runs
behind the iteration costs and the scheduler itself, and the iterations per second.
Target (issue #12): under 30 s on 2 cores. Run: python benchmarks/bench_serving.py
"""
from __future__ import annotations

import time

from dse.serving import ServingSpec, simulate_serving
from dse.serving.cost import IterationCost
from dse.spec.loader import load_architecture


def main() -> None:
    arch = load_architecture("h100-class")
    spec = ServingSpec(model="llama-3-8b", rate=10.0, requests=6000, prompt_tokens="128-1024",
                       output_tokens="32-256", batch_cap=64, chunk_tokens=512)
    cost = IterationCost(arch, spec.shape(), spec.formats)
    t0 = time.perf_counter()
    result = simulate_serving(arch, spec, cost)
    wall = time.perf_counter() - t0
    s = result.summary_row
    print(f"requests: {s['requests']}, simulated: {s['duration_s']:.1f} s, iterations: {s['iterations']}")
    print(f"wall: {wall:.2f} s (target < 30 s); engine runs: {result.engine_runs}; "
          f"iterations per wall second: {s['iterations'] / wall:,.0f}")
    print(f"ttft p50/p99: {s['ttft_p50_s'] * 1e3:.1f} / {s['ttft_p99_s'] * 1e3:.1f} ms, "
          f"tpot p50/p99: {s['tpot_p50_s'] * 1e3:.2f} / {s['tpot_p99_s'] * 1e3:.2f} ms, "
          f"{s['throughput_tokens_per_s']:.0f} tokens/s, {s['tokens_per_j']:.2f} tokens/J")


if __name__ == "__main__":
    main()

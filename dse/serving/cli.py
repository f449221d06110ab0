"""`dse serve`: simulate an LLM server on one architecture and print its serving metrics."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from dse.errors import SpecError


def _seconds(text: str, field: str) -> float:
    from dse.units import to_si

    try:
        return to_si(text, "time")
    except ValueError as exc:
        raise SpecError(str(exc), field=field) from None


def serve(
    arch: str = typer.Argument(..., help="Architecture YAML file or bundled name (see `dse list architectures`)."),
    model: str = typer.Option("llama-3-8b", "--model", "-m",
                              help="Bundled model (llama-3-8b, llama-3-70b, mixtral-8x7b, qwen1.5-moe-a2.7b) "
                                   "or a Hugging Face config.json (or its folder)."),
    rate: float = typer.Option(1.0, "--rate", "-r", help="Poisson arrivals, requests per second."),
    requests: int = typer.Option(200, "--requests", "-n", help="Number of requests."),
    prompt_tokens: str = typer.Option("512", "--prompt-tokens", help="Prompt length: 512, or a uniform range 128-1024."),
    output_tokens: str = typer.Option("128", "--output-tokens", help="Output length: 128, or a range 32-512."),
    trace: Optional[Path] = typer.Option(None, "--trace", "-t",
                                         help="CSV/JSONL trace with arrival_s, prompt_tokens, output_tokens "
                                              "(replaces --rate/--requests and the lengths)."),
    batch_cap: int = typer.Option(64, "--batch-cap", help="Most sequences in the running batch."),
    chunk_tokens: int = typer.Option(512, "--chunk-tokens", help="Most prompt tokens prefilled per iteration."),
    block_tokens: int = typer.Option(16, "--block-tokens", help="Tokens per paged KV-cache block."),
    precision: str = typer.Option("bf16", "--precision", "-p", help="Activation (compute) format."),
    weight_precision: Optional[str] = typer.Option(None, "--weight-precision", help="Weight format (int4, fp4, fp8_e4m3, ...)."),
    kv_precision: Optional[str] = typer.Option(None, "--kv-precision", help="KV-cache format (fp8_e4m3, bf16, ...)."),
    admission: str = typer.Option("paged", "--admission", help="paged (grow and preempt) | reserve (prompt + output up front)."),
    preemption: str = typer.Option("recompute", "--preemption", help="recompute | swap (to the next memory tier)."),
    slo_ttft: str = typer.Option("200 ms", "--slo-ttft", help="TTFT objective for goodput."),
    slo_tpot: str = typer.Option("50 ms", "--slo-tpot", help="TPOT objective for goodput."),
    disaggregated: bool = typer.Option(False, "--disaggregated",
                                       help="Prefill on one chip, decode on a second one of the same design."),
    kv_link: str = typer.Option("450 GB/s", "--kv-link", help="Bandwidth carrying the KV cache between the two chips."),
    seed: int = typer.Option(0, "--seed", help="Seed of the arrival and length draws."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json (the summary)."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the per-request table to FILE.csv or FILE.parquet."),
) -> None:
    """Serve a stream of LLM requests (continuous batching, chunked prefill, paged KV cache)."""
    from dse.console import fail, print_summary, write_frame
    from dse.serving import ServingSpec, simulate_serving
    from dse.spec.loader import load_architecture

    if fmt not in ("table", "csv", "json"):
        fail(f"--format: '{fmt}' is not one of table, csv, json")
    if trace is not None and not trace.is_file():
        fail(f"{trace}: trace file not found")
    spec = ServingSpec(model=model, precision=precision, weight_precision=weight_precision,
                       kv_precision=kv_precision, rate=rate, requests=requests, prompt_tokens=prompt_tokens,
                       output_tokens=output_tokens, trace=str(trace) if trace else None, seed=seed,
                       batch_cap=batch_cap, chunk_tokens=chunk_tokens, block_tokens=block_tokens,
                       admission=admission, preemption=preemption, disaggregated=disaggregated, kv_link=kv_link,
                       slo_ttft_s=_seconds(slo_ttft, "--slo-ttft"), slo_tpot_s=_seconds(slo_tpot, "--slo-tpot"))
    a = load_architecture(arch)
    result = simulate_serving(a, spec)
    if out_file is not None:
        write_frame(result.requests, out_file)
    if fmt == "csv":
        sys.stdout.write(result.summary.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(json.dumps(result.summary_row, indent=2, default=str) + "\n")
    else:
        print_summary(result.summary_row, title=f"{a.name} · {spec.label}")


def run_serving_spec(arch: str, workload: str, batch: int | None, precision: str | None, per_op: bool,
                     fmt: str, out_file: Path | None) -> None:
    """`dse run ARCH -w serve:...`: the serving summary, as `dse run` prints a workload's."""
    from dse.console import fail, print_records, print_summary, write_frame
    from dse.serving import parse_serving_spec, simulate_serving
    from dse.spec.loader import load_architecture

    if batch is not None:
        fail("--batch: a serving run has no batch; set batch_cap in the serve: spec")
    if per_op:
        fail("--per-op: a serving run has no per-op table (dse serve --out writes one row per request)")
    spec = parse_serving_spec(workload)
    if precision is not None:
        spec = spec.with_values(precision=precision)
    a = load_architecture(arch)
    result = simulate_serving(a, spec)
    if out_file is not None:
        write_frame(result.summary, out_file)
    if not print_records(result.summary, fmt):
        print_summary(result.summary_row, title=f"{a.name} · {spec.label}")

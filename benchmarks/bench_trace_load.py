"""Trace loading speed (issue 13 item 2): a 10,000-op trace of independent matmuls,
as JSON and as YAML, loaded by `dse.workloads.trace.load_trace`; `json.loads` of the
same file as the floor. Prints seconds (best of 3); target: JSON <= 0.2 s.

    python benchmarks/bench_trace_load.py [n_ops]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from dse.workloads.trace import load_trace


def best_of(fn, n: int = 3) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(n_ops: int = 10_000) -> None:
    ops = [{"name": f"mm{i}", "kind": "matmul", "m": 64 + i % 7, "n": 128, "k": 256} for i in range(n_ops)]
    trace = {"name": f"independent-{n_ops}", "ops": ops}
    with tempfile.TemporaryDirectory() as tmp:
        js, ym = Path(tmp) / "trace.json", Path(tmp) / "trace.yaml"
        js.write_text(json.dumps(trace, indent=1))
        ym.write_text(yaml.safe_dump(trace, sort_keys=False))
        floor = best_of(lambda: json.loads(js.read_text()))
        t_json = best_of(lambda: load_trace(js))
        t_yaml = best_of(lambda: load_trace(ym))
    print(f"{n_ops:,}-op trace: json.loads {floor:.3f} s | load_trace .json {t_json:.3f} s "
          f"(target <= 0.2 s: {'met' if t_json <= 0.2 else 'NOT met'}) | load_trace .yaml {t_yaml:.3f} s "
          f"(libyaml C loader: {getattr(yaml, '__with_libyaml__', False)})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)

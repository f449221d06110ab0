"""Time the parsing of a 1,000,000-line memory-access trace.

Run: python benchmarks/bench_memtrace.py [lines]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dse.workloads.memtrace import parse_memtrace, summary


def write_trace(path: Path, lines: int, seed: int = 0) -> None:
    """A synthetic trace: increasing cycles, random 64-byte-aligned addresses, 30% writes."""
    rng = np.random.default_rng(seed)
    cycles = np.cumsum(rng.integers(1, 20, lines))
    addresses = rng.integers(0, 2**40, lines, dtype=np.uint64) & ~np.uint64(63)
    ops = np.where(rng.random(lines) < 0.3, "W", "R")
    with path.open("w") as f:
        f.write("# cycle address op size\n")
        f.writelines(f"{c} 0x{a:x} {o} 64\n" for c, a, o in zip(cycles, addresses, ops))


def main(lines: int = 1_000_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace.txt"
        write_trace(path, lines)
        t0 = time.perf_counter()
        df = parse_memtrace(path)
        elapsed = time.perf_counter() - t0
        s = summary(df)
        mb = path.stat().st_size / 1e6
    print(f"parsed {len(df):,} accesses ({mb:.0f} MB) in {elapsed:.2f} s; "
          f"read {s['read_bytes']:.3g} B, wrote {s['write_bytes']:.3g} B")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

"""Start-up cost: CPU seconds (user + system) of whole `dse` processes, best of several runs.

    python benchmarks/bench_startup.py                       # this checkout
    python benchmarks/bench_startup.py --baseline 35534f0    # and a git revision, same run

Each command runs in a fresh interpreter, as a user would start it; the cache of unit
readings (``$DSE_CACHE_DIR``) is warmed by one run first, so the figures are those of
every run after the first. Target (issue 13): `dse run <design> -w resnet50` at most 0.3 s.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["--help"],
    ["run", "tpu-v1-like", "-w", "resnet50"],
    ["run", "h100-class", "-w", "resnet50"],
    ["run", "tpu-v1-like", "-w", "resnet50", "--format", "csv"],
    ["check", "tpu-v1-like"],
]


def cpu_of(args: list[str], src: Path, cache: str, repeat: int) -> float:
    """Least CPU seconds of ``repeat`` runs of ``python -m dse ARGS`` importing dse from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "DSE_CACHE_DIR": cache}
    best = float("inf")
    subprocess.run([sys.executable, "-m", "dse", *args], env=env, cwd=src, capture_output=True, check=True)
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "dse", *args], env=env, cwd=src, capture_output=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def checkout(rev: str, into: Path) -> Path:
    """The tree of ``rev`` exported into ``into`` (no worktree, no change to the repository)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="git revision to measure in the same run")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as tmp:
        trees = [("this checkout", ROOT)]
        if args.baseline:
            trees.insert(0, (args.baseline, checkout(args.baseline, Path(tmp) / "base")))
        print(f"CPU seconds per process, best of {args.repeat} (python {sys.version.split()[0]})")
        print(f"{'command':<52}" + "".join(f"{name[:14]:>16}" for name, _ in trees))
        for cmd in COMMANDS:
            cells = []
            for i, (_, src) in enumerate(trees):
                cache = str(Path(tmp) / f"cache{i}")
                cells.append(cpu_of(cmd, src, cache, args.repeat))
            ratio = f"{cells[0] / cells[-1]:>8.1f}x" if len(cells) > 1 else ""
            print(f"{'dse ' + ' '.join(cmd):<52}" + "".join(f"{c:>16.3f}" for c in cells) + ratio,
                  flush=True)


if __name__ == "__main__":
    main()

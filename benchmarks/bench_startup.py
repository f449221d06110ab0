"""Start-up cost: CPU seconds (user + system) of whole `dse` processes, best of several runs.

    python benchmarks/bench_startup.py                       # this checkout
    python benchmarks/bench_startup.py --baseline e624370    # and a git revision, same run

Each command runs as a user starts it: the ``dse`` console script that pip installed next to
this interpreter (not the pyenv shim on PATH, a bash script that adds ~0.1 s of its own), with
``PYTHONPATH`` pointing at the tree under test; ``python -m dse`` where there is no such script.
Bytecode is written (a pip install compiles it) and the cache of unit readings
(``$DSE_CACHE_DIR``) is warmed by one run first, so the figures are those of every run after
the first. ``python -c pass`` is the floor no command can go under. Target (issue 13):
`dse run <design> -w resnet50` at most 0.3 s for every bundled design.
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
SCRIPT = Path(sys.executable).with_name("dse")


def commands(src: Path) -> list[list[str]]:
    designs = sorted(p.stem for p in (src / "architectures").glob("*.yaml"))
    return ([["--help"], ["check", "tpu-v1-like"]]
            + [["run", d, "-w", "resnet50"] for d in designs]
            + [["run", "tpu-v1-like", "-w", "resnet50", "--format", "csv"]])


def launcher() -> list[str]:
    return [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "dse"]


def cpu_of(argv: list[str], src: Path, cache: str, repeat: int) -> float:
    """Least CPU seconds of ``repeat`` runs of ``argv`` importing dse from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "DSE_CACHE_DIR": cache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    best = float("inf")
    subprocess.run(argv, env=env, cwd=src, capture_output=True, check=True)  # warm: bytecode, unit cache
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, env=env, cwd=src, capture_output=True, check=True)
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
    ap.add_argument("--only", help="measure only commands containing this text (e.g. 'run')")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as tmp:
        trees = [("this checkout", ROOT)]
        if args.baseline:
            trees.insert(0, (args.baseline, checkout(args.baseline, Path(tmp) / "base")))
        head = launcher()
        print(f"CPU seconds per process (user + system), best of {args.repeat}; python "
              f"{sys.version.split()[0]}; command: {' '.join(Path(h).name for h in head)} ...")
        ratio_head = "  baseline/this" if len(trees) > 1 else ""
        print(f"{'command':<52}" + "".join(f"{name[:14]:>16}" for name, _ in trees) + ratio_head)
        floor = cpu_of([sys.executable, "-c", "pass"], ROOT, str(Path(tmp) / "floor"), args.repeat)
        print(f"{'python -c pass (floor)':<52}" + f"{floor:>16.3f}" * len(trees), flush=True)
        for cmd in commands(ROOT):
            text = "dse " + " ".join(cmd)
            if args.only and args.only not in text:
                continue
            cells = []
            for i, (_, src) in enumerate(trees):
                cache = str(Path(tmp) / f"cache{i}")
                try:
                    cells.append(cpu_of(head + cmd, src, cache, args.repeat))
                except subprocess.CalledProcessError:  # e.g. a design the baseline does not have
                    cells.append(float("nan"))
            ratio = f"{cells[0] / cells[-1]:>14.2f}x" if len(cells) > 1 else ""
            print(f"{text:<52}" + "".join(f"{c:>16.3f}" for c in cells) + ratio, flush=True)


if __name__ == "__main__":
    main()

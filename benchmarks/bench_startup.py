"""Start-up cost: CPU seconds (user + system) of whole `dse` processes, best of several runs.

    python benchmarks/bench_startup.py                       # this checkout
    python benchmarks/bench_startup.py --baseline e624370    # and a git revision, same run
    python benchmarks/bench_startup.py --breakdown tpu-v1-like   # where a `dse run` spends its CPU

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
import collections
import os
import re
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


#: Run in a fresh interpreter: `dse ARGS` with the phases of a `dse run` timed (CPU seconds).
PHASES = r"""
import sys, time, functools
t0 = time.process_time()
import dse.cli as cli
t1 = time.process_time()
import dse.spec.cache, dse.workloads, dse.sim.engine as engine
spent = {}
def timed(mod, name, label):
    f = getattr(mod, name)
    @functools.wraps(f)
    def g(*a, **k):
        s = time.process_time()
        try:
            return f(*a, **k)
        finally:
            spent[label] = spent.get(label, 0.0) + time.process_time() - s
    setattr(mod, name, g)
timed(dse.spec.cache, "cached_architecture", "load the design from the cache")
timed(dse.spec.cache, "load_architecture_cached", "load the design (YAML, validation)")
timed(dse.workloads, "load_workload", "build the workload")
timed(engine, "simulate", "simulate()")
timed(cli, "print_summary", "print the summary table (Rich)")
t2 = time.process_time()
sys.argv = ["dse", *sys.argv[1:]]
try:
    cli.main()
except SystemExit:
    pass
t3 = time.process_time()
rows = [("import dse.cli: Typer, Rich, the command modules", t1 - t0),
        ("import what run uses: pydantic, SimPy, dse.spec/sim/workloads", t2 - t1),
        ("Typer: build the commands, parse and convert the arguments", t3 - t2 - sum(spent.values()))]
rows += list(spent.items())
for label, s in rows:
    sys.stderr.write(f"PHASE\t{label}\t{s}\n")
"""


def breakdown(design: str, repeat: int) -> None:
    """Where the CPU of `dse run DESIGN -w resnet50` goes: interpreter, phases, imports by package."""
    args = ["run", design, "-w", "resnet50"]
    with tempfile.TemporaryDirectory(prefix="dse-bench-") as cache:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DSE_CACHE_DIR": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        total = cpu_of(launcher() + args, ROOT, cache, repeat)
        floor = cpu_of([sys.executable, "-c", "pass"], ROOT, cache, repeat)
        phases: dict[str, float] = {}
        imports: dict[str, float] = collections.defaultdict(lambda: float("inf"))
        for _ in range(repeat):
            run = subprocess.run([sys.executable, "-c", PHASES, *args], env=env, cwd=ROOT, capture_output=True,
                                 text=True, check=True)
            for line in run.stderr.splitlines():
                if line.startswith("PHASE\t"):
                    _, label, s = line.split("\t")
                    phases[label] = min(phases.get(label, float("inf")), float(s))
            script = [str(SCRIPT)] if SCRIPT.is_file() else ["-m", "dse"]
            timing = subprocess.run([sys.executable, "-X", "importtime", *script, *args], env=env, cwd=ROOT,
                                    capture_output=True, text=True, check=True)
            own: dict[str, float] = collections.defaultdict(float)
            for m in re.finditer(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", timing.stderr):
                parts = m.group(2).split(".")
                own[".".join(parts[:2]) if parts[0] == "dse" else parts[0]] += int(m.group(1)) / 1e6
            for package, s in own.items():
                imports[package] = min(imports[package], s)
    print(f"`dse {' '.join(args)}`: {total:.3f} s CPU (best of {repeat}), of which the interpreter "
          f"(python -c pass) {floor:.3f} s")
    print("phases, best of each (in-process CPU; the rest is start-up and exit):")
    for label, s in phases.items():
        print(f"  {label:<64}{s * 1000:7.1f} ms")
    print(f"imports by package (own time, python -X importtime, which inflates them), "
          f"{sum(imports.values()) * 1000:.0f} ms in all:")
    for package, s in sorted(imports.items(), key=lambda kv: -kv[1])[:24]:
        print(f"  {package:<40}{s * 1000:7.1f} ms")


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
    ap.add_argument("--breakdown", metavar="DESIGN", help="where `dse run DESIGN -w resnet50` spends its CPU")
    args = ap.parse_args()
    if args.breakdown:
        breakdown(args.breakdown, args.repeat)
        return
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

"""Fuzz campaign (issue 14): mutated architectures, traces and studies (tests/fuzz_inputs.py)
through `dse check`, `dse run` and `dse sweep`, each in its own forked process with a 20 s limit
of CPU time (and a 300 s limit of wall time, for a run that blocks without computing: on a
machine shared with other work, wall time measures the load more than the run), and an
address-space cap, so that a bomb cannot take the machine down. Prints the runs per
input kind and command, exit codes, tracebacks, hangs, runs that grew past 1 GB, and exit-2
messages that name neither a line nor a field ("unclear"), with examples of each.

    python benchmarks/fuzz_campaign.py                        # 10,000 runs, seed 0
    python benchmarks/fuzz_campaign.py --runs 2000 --seeds 1-5 # 5 chunks of 2,000, summed
    python benchmarks/fuzz_campaign.py --runs 2000 --seeds 3 --save fuzz3.json   # one chunk
    python benchmarks/fuzz_campaign.py --sum fuzz1.json fuzz2.json ...           # add chunks up
    python benchmarks/fuzz_campaign.py ... --keep DIR   # copy every input that failed into DIR

Which command each kind goes through: an architecture through `check`, `run` (a GEMM) or
`sweep` (the quick-start study pointed at it); a trace through `run` (on tpu-v1-like) or
`sweep` (the quick-start study with the trace as its workload); a study through `sweep`.

An exit-2 line is "clear" only if it names a line (``file.yaml:12``, ``line 12``) or a field:
a key of the input (or of the schema's documents) in field position (a dotted or indexed path,
a key followed by ``:``, or a quoted key), or a command-line option. Words in prose do not count.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fuzz_inputs as F  # noqa: E402

LIMIT_S = 20.0         # CPU seconds: a run that computes this long is a hang
WALL_LIMIT_S = 300.0   # wall seconds: a run that waits this long is a hang too
GB = 2**30
LABELS = ("accepted (exit 0)", "clear one-line error", "unclear exit-2 message", "exit 2, not one line",
          "traceback", "hang (20 s CPU, 300 s wall)", "grew past 1 GB")
# which command each input kind goes through, with its share of that kind's runs
ROUTES = {"arch": (("check", 0.45), ("run", 0.4), ("sweep", 0.15)),
          "trace": (("run", 0.8), ("sweep", 0.2)),
          "study": (("sweep", 1.0),)}
SHARE = {"arch": 0.48, "trace": 0.40, "study": 0.12}


# ----------------------------------------------------------------------------- classifier

_LINE = re.compile(r"\.(?:ya?ml|json|onnx):\d+\b|\bline \d+\b")
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]+\b|(?<![\w-])-[a-zA-Z]\b")
_PATH_TOKEN = re.compile(r"[A-Za-z_][\w-]*(?:(?:\.[A-Za-z_0-9][\w-]*)|\[\d+\])+")
_KEY_TOKEN = re.compile(r"(?:^|[\s(,;])([A-Za-z_][\w-]*):(?:\s|$)")
_QUOTED = re.compile(r"['`\"]([A-Za-z_][\w.\[\]-]*)['`\"]")
_KEY_IN_TEXT = re.compile(r"^[\s-]*[\"']?([A-Za-z_][\w.-]*)[\"']?\s*:", re.M)


def _keys(data, out: set[str]) -> set[str]:
    todo = [data]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                if isinstance(k, str):
                    out.add(k)
                    out.update(k.split("."))
                todo.append(v)
        elif isinstance(item, list):
            todo.extend(item)
    return out


def _schema_keys() -> set[str]:
    """Every field name of the bundled documents and of the pydantic models."""
    keys: set[str] = set()
    for base in (F.BASE_ARCH, F.BASE_STUDY, F.BASE_TRACE):
        _keys(base, keys)
    try:
        import pydantic

        import dse.spec.architecture as A
        todo = [v for v in vars(A).values() if isinstance(v, type) and issubclass(v, pydantic.BaseModel)]
        for model in todo:
            keys.update(model.model_fields)
    except Exception:  # noqa: BLE001 - the bundled documents' keys are enough
        pass
    return keys | set(F.MISTYPED) | {"objectives", "parameters", "derived", "constraints", "workloads",
                                     "seed", "sampler", "n_trials", "ops", "deps", "screen"}


SCHEMA_KEYS: set[str] = set()


def classify_line(line: str, input_text: str) -> bool:
    """True if the one error line names a line or a field (see the module's docstring)."""
    body = line[len("error:"):].strip() if line.startswith("error:") else line
    body = re.sub(r" \(see `[^`]*--help`\)$", "", body)  # the usage hint names no field
    if _LINE.search(body) or _OPTION.search(body):
        return True
    keys = SCHEMA_KEYS | set(_KEY_IN_TEXT.findall(input_text))
    for tok in _PATH_TOKEN.findall(body):
        parts = [p for p in re.split(r"[.\[\]]+", tok) if p and not p.isdigit()]
        if any(p in keys for p in parts):
            return True
    for tok in _KEY_TOKEN.findall(body) + _QUOTED.findall(body):
        if tok in keys or tok.split(".")[-1] in keys:
            return True
    return False


# ----------------------------------------------------------------------------- one run


def _child(argv: list[str], w: int) -> None:
    soft = int(os.environ.get("DSE_FUZZ_AS_BYTES", "0"))
    if soft:
        resource.setrlimit(resource.RLIMIT_AS, (soft, soft))
    resource.setrlimit(resource.RLIMIT_CPU, (int(LIMIT_S) + 1, int(LIMIT_S) + 2))  # SIGXCPU, then SIGKILL
    from dse.cli import main

    err = io.StringIO()
    code = 0
    sys.argv = ["dse", *argv]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - what the campaign is looking for
        code = 99
        err.write(traceback.format_exc())
    os.write(w, json.dumps({"code": code, "stderr": err.getvalue()[-200_000:]}).encode())
    os._exit(0)


def run(argv: list[str]) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            _child(argv, w)
        finally:
            os._exit(1)
    os.close(w)
    t0 = time.monotonic()
    chunks = []
    hang = False
    while True:
        left = WALL_LIMIT_S - (time.monotonic() - t0)
        if left <= 0:
            hang = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([r], [], [], left)
        if ready:
            data = os.read(r, 65536)
            if not data:
                break
            chunks.append(data)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    out = {"code": None, "stderr": ""}
    if chunks:
        try:
            out = json.loads(b"".join(chunks))
        except ValueError:
            pass
    out["maxrss"] = usage.ru_maxrss * 1024
    out["seconds"] = time.monotonic() - t0
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    killed_by_cpu = os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL)
    out["hang"] = hang or killed_by_cpu or out["cpu_s"] > LIMIT_S
    if out["code"] is None and not hang:
        out["code"] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return out


# ----------------------------------------------------------------------------- a chunk


def _study_for(tmpdir: Path, i: int, arch: str = "tpu-v1-like", workload: str | None = None) -> Path:
    import yaml

    doc = dict(F.BASE_STUDY, architecture=arch, n_trials=2)
    if workload is not None:
        doc["workloads"] = [workload]
    path = tmpdir / f"s{i}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _inputs(kind: str, rng: random.Random, tmpdir: Path, i: int) -> tuple[list[str], Path, str]:
    routes = ROUTES[kind]
    cmd = rng.choices([c for c, _ in routes], [w for _, w in routes])[0]
    if kind == "arch":
        path = tmpdir / f"a{i}.yaml"
        path.write_text(F.architecture_text(rng))
        if cmd == "check":
            argv = ["check", str(path)]
        elif cmd == "run":
            argv = ["run", str(path), "-w", "gemm:m=64,n=64,k=64"]
        else:
            argv = ["sweep", str(_study_for(tmpdir, i, arch=str(path))), "-n", "2", "-o", str(tmpdir / f"out{i}")]
    elif kind == "trace":
        text, suffix = F.trace_text(rng)
        path = tmpdir / f"t{i}{suffix}"
        path.write_text(text)
        if cmd == "run":
            argv = ["run", "tpu-v1-like", "-w", str(path)]
        else:
            argv = ["sweep", str(_study_for(tmpdir, i, workload=str(path))), "-n", "2", "-o", str(tmpdir / f"out{i}")]
    else:
        path = tmpdir / f"s{i}.yaml"
        path.write_text(F.study_text(rng))
        argv = ["sweep", str(path), "-n", "2", "-o", str(tmpdir / f"out{i}")]
    return argv, path, cmd


def chunk(total: int, seed: int, keep: Path | None, log=None, log_all: bool = False) -> dict:
    """``total`` runs from ``seed``: counts and examples (a dict that --sum adds up)."""
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rng = random.Random(seed)
    kinds = list(SHARE)
    plan = rng.choices(kinds, [SHARE[k] for k in kinds], k=total)
    counts: collections.Counter = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    distinct: set[int] = set()
    worst = {"cpu_s": 0.0, "wall_s": 0.0, "rss_gb": 0.0}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
        tmpdir = Path(tmp)
        os.environ["DSE_CACHE_DIR"] = str(tmpdir / "cache")  # not the user's cache
        try:
            for i, kind in enumerate(plan):
                argv, path, cmd = _inputs(kind, rng, tmpdir, i)
                text = path.read_text(errors="replace")
                distinct.add(hash((kind, text)))
                res = run(argv)
                key = f"{kind}/{cmd}"
                counts["runs"] += 1
                counts[f"runs {key}"] += 1
                stderr = res["stderr"]
                lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
                if res["hang"]:
                    label = "hang (20 s CPU, 300 s wall)"
                elif res["code"] == 99 or "Traceback" in stderr:
                    label = "traceback"
                elif res["code"] == 0:
                    label = "accepted (exit 0)"
                elif res["code"] == 2 and len(lines) == 1 and lines[0].startswith("error:"):
                    label = "clear one-line error" if classify_line(lines[0], text) else "unclear exit-2 message"
                elif res["code"] == 2:
                    label = "exit 2, not one line"
                else:
                    label = f"exit {res['code']}"
                counts[label] += 1
                counts[f"{key} {label}"] += 1
                counts[f"exit code {res['code'] if not res['hang'] else 'killed'}"] += 1
                if res["seconds"] > LIMIT_S:
                    counts["over 20 s of wall time (load)"] += 1
                worst["cpu_s"] = max(worst["cpu_s"], res["cpu_s"])
                worst["wall_s"] = max(worst["wall_s"], res["seconds"])
                worst["rss_gb"] = max(worst["rss_gb"], (res["maxrss"] - base_rss) / GB)
                big = res["maxrss"] - base_rss > GB
                if big:
                    counts["grew past 1 GB"] += 1
                bad = big or label not in ("accepted (exit 0)", "clear one-line error")
                if bad:
                    name = f"seed{seed}-{path.name}"
                    what = "grew past 1 GB" if big else label
                    detail = (stderr if label == "traceback" else (lines[-1] if lines else stderr))[-600:]
                    if len(examples[what]) < 8:
                        examples[what].append(f"{key} {name}: {detail}")
                    if keep is not None:
                        keep.mkdir(parents=True, exist_ok=True)
                        shutil.copy(path, keep / name)
                        if argv[0] == "sweep" and kind != "study":
                            shutil.copy(argv[1], keep / f"{name}.study.yaml")
                if log is not None and (bad or log_all):
                    log.write(json.dumps({"seed": seed, "i": i, "kind": key, "label": "grew past 1 GB" if big else label,
                                          "argv": argv, "stderr": stderr, "input": path.name}) + "\n")
                    log.flush()
                if (i + 1) % 250 == 0:
                    print(f"  seed {seed}: {i + 1:,} runs, {time.monotonic() - t_start:.0f} s, "
                          + ", ".join(f"{k} {counts.get(k, 0)}" for k in LABELS[2:]), flush=True)
        except KeyboardInterrupt:
            print("\ninterrupted: the figures below cover the runs done so far")
    counts["distinct inputs"] = len(distinct)
    return {"seeds": [seed], "wall_s": time.monotonic() - t_start, "counts": dict(counts),
            "examples": dict(examples), "worst": worst}


def add(results: list[dict]) -> dict:
    counts: collections.Counter = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    for r in results:
        counts.update(r["counts"])
        for k, v in r["examples"].items():
            examples[k].extend(v[: max(0, 8 - len(examples[k]))])
    worst = {k: max(r["worst"][k] for r in results) for k in results[0]["worst"]} if results else {}
    return {"seeds": [s for r in results for s in r["seeds"]], "wall_s": sum(r["wall_s"] for r in results),
            "counts": dict(counts), "examples": dict(examples), "worst": worst}


def report(result: dict) -> None:
    c = result["counts"]
    print(f"\nfuzz campaign: {c.get('runs', 0):,} runs ({c.get('distinct inputs', 0):,} distinct inputs), "
          f"seeds {result['seeds']}, {result['wall_s']:.0f} s of wall time in all")
    routes = sorted(k[5:] for k in c if k.startswith("runs "))
    print(f"  {'kind/command':<14} {'runs':>6} " + " ".join(f"{lab.split()[0][:9]:>9}" for lab in LABELS[:6]))
    for key in routes:
        print(f"  {key:<14} {c[f'runs {key}']:>6,} " + " ".join(f"{c.get(f'{key} {lab}', 0):>9,}" for lab in LABELS[:6]))
    for key in LABELS:
        print(f"  {key:<24} {c.get(key, 0):>6,}")
    for key in sorted(k for k in c if k.startswith("exit code ")):
        print(f"  {key:<24} {c[key]:>6,}")
    w = result.get("worst") or {}
    if w:
        print(f"  slowest run: {w['cpu_s']:.1f} s of CPU; longest: {w['wall_s']:.1f} s of wall time "
              f"({c.get('over 20 s of wall time (load)', 0):,} runs over 20 s of wall time); "
              f"most memory: {w['rss_gb']:.2f} GB above the parent's")
    for label, items in result["examples"].items():
        print(f"\n{label} (examples):")
        for item in items:
            print(f"  {item}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000, help="runs per seed")
    ap.add_argument("--seeds", default="0", help="a seed, a list (1,2,3) or a range (1-5): one chunk each")
    ap.add_argument("--save", type=Path, help="write the (summed) figures as JSON, for --sum")
    ap.add_argument("--keep", type=Path, help="copy every input that failed into this folder")
    ap.add_argument("--log", type=Path, help="append each failing run (argv, stderr) as a JSON line")
    ap.add_argument("--log-all", action="store_true", help="--log every run, not only the failing ones")
    ap.add_argument("--sum", nargs="+", type=Path, help="add up saved chunks and print them")
    ap.add_argument("--as-gb", type=float, default=4.0, help="address-space cap per run above the parent's")
    args = ap.parse_args()
    if args.sum:
        report(add([json.loads(p.read_text()) for p in args.sum]))
        return
    seeds: list[int] = []
    for part in args.seeds.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]

    import importlib

    for module in ("dse.cli", "dse.search.cli", "dse.search.study", "dse.search.resolve", "dse.search.objective",
                   "dse.search.tables", "dse.sim.engine", "dse.workloads", "dse.workloads.trace", "dse.spec.loader",
                   "dse.spec.variants", "optuna", "pandas", "pyarrow", "yaml"):  # loaded once, before forking
        importlib.import_module(module)

    SCHEMA_KEYS.update(_schema_keys())
    with open("/proc/self/status") as fh:
        vm = next((int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("VmSize:")), 0)
    if vm and args.as_gb > 0:
        os.environ["DSE_FUZZ_AS_BYTES"] = str(int(vm + args.as_gb * GB))
    log = open(args.log, "a") if args.log else None  # noqa: SIM115
    results = []
    for seed in seeds:
        results.append(chunk(args.runs, seed, args.keep, log, args.log_all))
        if len(seeds) > 1:
            report(results[-1])
    total = add(results)
    if args.save:
        args.save.write_text(json.dumps(total))
    report(total)


if __name__ == "__main__":
    main()

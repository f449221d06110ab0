"""Fuzz campaign (issue 14): mutated architectures, traces and studies through `dse check`,
`dse run` and `dse sweep`, each in its own forked process with a 20 s limit. Prints the
runs, exit codes, tracebacks, hangs, runs that grew past 1 GB, and exit-2 messages that
name neither a line nor a field ("unclear"), with examples of each.

    python benchmarks/fuzz_campaign.py [n_total] [seed]      # default 10,000 runs, seed 0
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import random
import re
import resource
import select
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fuzz_inputs as F  # noqa: E402

LIMIT_S = 20.0
GB = 2**30
CLEAR = [re.compile(r"\.(ya?ml|json):\d+"),                                # file:line
         re.compile(r"error: (?:[^:]+: )?[A-Za-z_][\w\-]*(?:\.[\w\-]+|\[\d+\])*: "),  # a field path
         re.compile(r"--[a-z-]+|'[\w.\[\]-]+'|\b(?:op|parameter|field|objective|workload)\b")]


def _child(argv: list[str], w: int) -> None:
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
    os.write(w, json.dumps({"code": code, "stderr": err.getvalue()[-1500:]}).encode())
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
        left = LIMIT_S - (time.monotonic() - t0)
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
    out["hang"] = hang
    out["maxrss"] = usage.ru_maxrss * 1024
    out["seconds"] = time.monotonic() - t0
    if out["code"] is None and not hang:
        out["code"] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return out


def main(total: int = 10_000, seed: int = 0) -> None:
    import dse.cli  # noqa: F401 - loaded once, before forking
    import dse.search.study  # noqa: F401
    import dse.sim.engine  # noqa: F401
    import dse.workloads  # noqa: F401

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rng = random.Random(seed)
    n_study = total // 10
    n_arch = (total - n_study) // 2
    plan = ["arch"] * n_arch + ["trace"] * (total - n_study - n_arch) + ["study"] * n_study
    rng.shuffle(plan)
    counts: collections.Counter = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dse-fuzz-") as tmp:
        tmpdir = Path(tmp)
        try:
            _loop(plan, rng, tmpdir, counts, examples, base_rss, t_start)
        except KeyboardInterrupt:
            print("\ninterrupted: the figures below cover the runs done so far")
    _report(counts, examples, seed, t_start)


def _loop(plan, rng, tmpdir, counts, examples, base_rss, t_start) -> None:
    for i, kind in enumerate(plan):
        if kind == "arch":
            path = tmpdir / f"a{i}.yaml"
            path.write_text(F.architecture_text(rng))
            argv = ["check", str(path)] if rng.random() < 0.5 else \
                ["run", str(path), "-w", "gemm:m=64,n=64,k=64"]
        elif kind == "trace":
            text, suffix = F.trace_text(rng)
            path = tmpdir / f"t{i}{suffix}"
            path.write_text(text)
            argv = ["run", "tpu-v1-like", "-w", str(path)]
        else:
            path = tmpdir / f"s{i}.yaml"
            path.write_text(F.study_text(rng))
            argv = ["sweep", str(path), "-n", "2", "-o", str(tmpdir / f"out{i}")]
        res = run(argv)
        cmd = f"{kind}/{argv[0]}"
        counts["runs"] += 1
        counts[f"runs {cmd}"] += 1
        stderr = res["stderr"]
        lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
        if res["hang"]:
            label = "hang over 20 s"
        elif res["code"] == 99 or "Traceback" in stderr:
            label = "traceback"
        elif res["code"] == 0:
            label = "accepted (exit 0)"
        elif res["code"] == 2 and len(lines) == 1 and lines[0].startswith("error:"):
            label = "clear one-line error" if any(c.search(lines[0]) for c in CLEAR) else "unclear exit-2 message"
        elif res["code"] == 2:
            label = "exit 2, not one line"
        else:
            label = f"exit {res['code']}"
        counts[label] += 1
        if res["maxrss"] - base_rss > GB:
            counts["grew past 1 GB"] += 1
            examples["grew past 1 GB"].append(f"{cmd}: {res['maxrss'] / GB:.1f} GB")
        if label not in ("accepted (exit 0)", "clear one-line error") and len(examples[label]) < 5:
            examples[label].append(f"{cmd} {path.name}: {(lines[-1] if lines else stderr)[-300:]}")
        if (i + 1) % 100 == 0:
            print(f"  {i + 1:,} runs, {time.monotonic() - t_start:.0f} s: {dict(counts)}", flush=True)


def _report(counts, examples, seed, t_start) -> None:
    print(f"\nfuzz campaign: {counts['runs']:,} runs (seed {seed}) in {time.monotonic() - t_start:.0f} s")
    for key in sorted(k for k in counts if k.startswith("runs ")):
        print(f"  {key[5:]:<14} {counts[key]:>6,}")
    for key in ("accepted (exit 0)", "clear one-line error", "unclear exit-2 message", "exit 2, not one line",
                "traceback", "hang over 20 s", "grew past 1 GB"):
        print(f"  {key:<24} {counts.get(key, 0):>6,}")
    for key in sorted(k for k in counts if k.startswith("exit ") and k != "exit 2, not one line"):
        print(f"  {key:<24} {counts[key]:>6,}")
    for label, items in examples.items():
        print(f"\n{label} (examples):")
        for item in items:
            print(f"  {item}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, int(sys.argv[2]) if len(sys.argv) > 2 else 0)

"""Fuzz: thousands of mutated architectures, traces and studies (tests/fuzz_inputs.py), each
either accepted (and then simulated to finite results) or refused with one DseError line:
never another exception, never a hang. The full campaign through the CLI, with hang and
memory counts, is benchmarks/fuzz_campaign.py."""
from __future__ import annotations

import math
import signal
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_inputs as F
from dse.errors import DseError

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("no answer within 20 s")


def _guarded(fn):
    """Run ``fn``; return the DseError it raised (None if it succeeded); a hang fails."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except DseError as exc:
        line = str(exc)
        assert line and "\n" not in line, repr(line)
        return exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return None


def _finite(result) -> None:
    for key in ("latency_s", "energy_j", "avg_power_w", "tops_per_w"):
        assert math.isfinite(result.summary_row[key]), (key, result.summary_row[key])


@pytest.fixture(scope="module")
def small():
    from dse.workloads import load_workload

    return load_workload("gemm:m=64,n=64,k=64")


@settings(max_examples=400, **SETTINGS)
@given(st.randoms(use_true_random=False))
def test_mutated_architectures_load_and_run_or_give_one_line(rnd):
    from dse.sim.engine import simulate
    from dse.spec.loader import architecture_from_doc
    from dse.spec.yaml_io import parse_yaml_text
    from dse.workloads import load_workload

    text = F.architecture_text(rnd)

    def go():
        arch = architecture_from_doc(parse_yaml_text(text, "arch.yaml"))
        if rnd.random() < 0.05:
            _finite(simulate(arch, load_workload("gemm:m=64,n=64,k=64")))

    _guarded(go)


@settings(max_examples=1600, **SETTINGS)
@given(st.randoms(use_true_random=False))
def test_mutated_traces_load_or_give_one_line(rnd):
    from dse.workloads.trace import parse_trace

    text, suffix = F.trace_text(rnd)
    _guarded(lambda: parse_trace(text, f"trace{suffix}", is_json=suffix == ".json"))


@settings(max_examples=80, **SETTINGS)
@given(st.randoms(use_true_random=False))
def test_mutated_studies_resolve_and_derive_or_give_one_line(rnd):
    import tempfile
    from pathlib import Path

    from dse.search.resolve import resolve_study

    folder = tempfile.TemporaryDirectory(prefix="dse-fuzz-")
    path = Path(folder.name) / "study.yaml"
    path.write_text(F.study_text(rnd))

    def go():
        s = resolve_study(str(path))
        values = {p.path: (p.choices[0] if p.kind == "categorical" else p.low) for p in s.space.parameters}
        s.space.derive(values)

    try:
        _guarded(go)
    finally:
        folder.cleanup()

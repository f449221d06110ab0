"""The screen: analytic estimates of many designs at once, checked against hand counts and
against the engine, and the two-stage study that simulates only what it ranks best."""
from __future__ import annotations

from math import ceil

import numpy as np
import optuna
import pytest

import search_fixtures as fx
from dse.search import objective
from dse.search.expressions import parse_expression, evaluate_arrays
from dse.search.resolve import load_spec, resolve_study
from dse.search.screen import Screen, sample
from dse.search.study import run_study
from dse.search.study_spec import StudySpec
from dse.search.tables import ALL
from dse.sim.engine import simulate

optuna.logging.set_verbosity(optuna.logging.ERROR)

ROWS = [32, 64, 96, 128, 200, 256, 384, 512]


def knee(tmp_path):
    return resolve_study(fx.write(tmp_path, fx.study()))


def test_gemm_roofline_equals_the_hand_count(tmp_path):
    """Weights stream from DRAM once, activations stay in the big SRAM: the GEMM takes
    max(SCALE-Sim fold cycles / clock, K*N bytes / DRAM bandwidth), and with leakage the
    only power, TOPS/W = 2MNK / (P(R) * that time)."""
    est = knee(tmp_path)
    out = Screen(est).evaluate({"compute.pe.rows": np.array(ROWS)})
    for i, r in enumerate(ROWS):
        compute_s = ceil(fx.K / r) * ceil(fx.N / r) * (3 * r + fx.M - 2) / fx.CLOCK_HZ
        memory_s = fx.K * fx.N / fx.DRAM_BPS
        assert out["latency_s"][i] == pytest.approx(max(compute_s, memory_s), rel=1e-12)
        assert out["avg_power_w"][i] == pytest.approx(fx.power_w(r), rel=1e-12)
        assert out["tops_per_w"][i] == pytest.approx(fx.tops_per_w(r), rel=1e-12)
        assert out["area_mm2"][i] == pytest.approx(1.0)   # the array's 1 mm^2, not derived


def test_the_estimate_never_exceeds_the_engine_latency_on_a_streaming_gemm(tmp_path):
    """No op finishes faster than its compute, its SRAM ports or its compulsory traffic."""
    st = knee(tmp_path)
    out = Screen(st).evaluate({"compute.pe.rows": np.array(ROWS)})
    for i, r in enumerate(ROWS):
        arch = objective.build_architecture(st.base_raw, {"compute.pe.rows": r, **st.space.derive(
            {"compute.pe.rows": r})})
        sim = simulate(arch, st.workloads[0].workload).summary_row["latency_s"]
        assert out["latency_s"][i] <= sim * (1 + 1e-9)
        assert out["latency_s"][i] >= 0.9 * sim   # and a close one on a streaming GEMM


@pytest.mark.parametrize("name", ["quickstart", "tpu-v1-75w", "multiobjective"])
def test_estimates_track_the_engine_on_bundled_studies(name):
    """On random designs of each bundled study the estimated latency is within 40% above and
    35% below the engine's (the engine overlaps neighbouring ops, which the estimate runs one
    after another), and the area is exact."""
    st = resolve_study(name)
    values = sample(st, 6, seed=11)
    est = Screen(st).evaluate(values)
    for i in range(6):
        params = {p.path: values[p.path][i].item() if hasattr(values[p.path][i], "item") else values[p.path][i]
                  for p in st.space.parameters}
        arch = objective.build_architecture(st.base_raw, {**params, **st.space.derive(params)})
        rows = [dict(simulate(arch, w.workload).summary_row) for w in st.workloads]
        agg = objective.aggregate(rows, [w.weight for w in st.workloads])
        assert 0.65 * agg["latency_s"] <= est["latency_s"][i] <= 1.4 * agg["latency_s"]
        assert est["area_mm2"][i] == pytest.approx(arch.area_mm2, rel=1e-9)


def test_sampled_designs_respect_ranges_steps_and_choices():
    st = resolve_study("tpu-v1-75w")
    v = sample(st, 5000, seed=0)
    rows = v["compute.mxu.rows"]
    assert rows.min() >= 64 and rows.max() <= 512 and np.all((rows - 64) % 32 == 0)
    assert set(np.unique(v["compute.mxu.dataflow"])) == {"weight_stationary", "output_stationary",
                                                           "input_stationary"}
    ub = v["sram.unified_buffer.capacity"]
    assert np.allclose((ub - 8 * 2**20) / (4 * 2**20), np.round((ub - 8 * 2**20) / (4 * 2**20)))


def test_array_evaluation_matches_the_scalar_one():
    expr = parse_expression("2 * max(rows, cols) * count * f + floor(ub / 3) - abs(-rows)")
    rng = np.random.default_rng(0)
    vals = {"rows": rng.integers(1, 600, 50), "cols": rng.integers(1, 600, 50), "count": rng.integers(1, 5, 50),
            "f": rng.uniform(1e8, 2e9, 50), "ub": rng.integers(1, 2**26, 50)}
    arr = evaluate_arrays(expr, vals)
    for i in range(50):
        assert arr[i] == pytest.approx(expr.evaluate({k: v[i].item() for k, v in vals.items()}), rel=1e-12)


def test_two_stage_quickstart_reaches_the_full_study_with_a_tenth_of_the_simulations(monkeypatch):
    """The full quick start simulates 40 designs (TPE); screening 100,000 and simulating the
    best 4 finds a design at least as good within 1%."""
    calls = []
    sim = objective.simulate
    monkeypatch.setattr(objective, "simulate", lambda a, w: calls.append(1) or sim(a, w))
    spec, _, _ = load_spec("quickstart")
    full = run_study(spec)
    full_calls = len(calls)
    calls.clear()
    two = run_study(StudySpec.model_validate({**spec.model_dump(), "screen": {"simulate": 4}}))
    assert len(calls) * 10 <= full_calls
    best = [df[(df["workload"] == ALL) & df["feasible"]]["tops_per_w"].max() for df in (full, two)]
    assert best[1] >= 0.99 * best[0]


def _with_screen(tmp_path, name: str, screen: str, **edits):
    """A copy of bundled study ``name`` with a ``screen:`` key (and top-level edits)."""
    from dse.search.resolve import bundled_file

    text = bundled_file("studies", name).read_text()
    for key, value in edits.items():
        text = text.replace(key, value)
    path = tmp_path / f"{name}-copy.yaml"
    path.write_text(text + f"screen: {screen}\n")
    return path


def _line_of(path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(needle))


UNSCREENABLE = [
    ("optical-scaling", "pipeline (2) or expert (1) parallelism",
     {"parallelism.data: count": "parallelism.data: count / 2\n  parallelism.pipeline: 2"}),
    ("llama3-70b-serving", "is a chip field", {"serving.batch_cap: {": "memories.hbm3.channels: {choices: [4, 5]}\n  serving.batch_cap: {"}),
]


@pytest.mark.parametrize("name,why,edits", UNSCREENABLE)
def test_a_study_the_screen_cannot_estimate_is_one_clear_line(tmp_path, name, why, edits):
    """``dse sweep`` of a study the screen cannot estimate: one line naming the file, the
    line of its screen: key and why; exit status 2; no traceback, nothing simulated."""
    import subprocess
    import sys

    path = _with_screen(tmp_path, name, "{simulate: 2}", **edits)
    proc = subprocess.run([sys.executable, "-m", "dse", "sweep", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"{path}:{_line_of(path, 'screen:')}: screen: " in lines[0]
    assert why in lines[0]

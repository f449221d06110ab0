"""The system screen: a training step on many chips estimated analytically, checked against
hand-computed alpha-beta times, link energy and the compute roofline, and the two-stage mode
on the optical-scaling study against its full grid."""
from __future__ import annotations

import numpy as np
import optuna
import pytest
import yaml

import dse.system.study
from dse.search.resolve import load_spec, resolve_study
from dse.search.two_stage import screen_for
from dse.search.study import run_study
from dse.search.study_spec import StudySpec
from dse.search.tables import ALL
from dse.spec.loader import load_architecture
from dse.system import simulate_system
from dse.system.spec import SystemSpec
from system_fixtures import FREE_SWITCH, LINK

optuna.logging.set_verbosity(optuna.logging.ERROR)

G = 4                       # chips, all data-parallel
M = N = K = 4096            # one bf16 GEMM per chip and step
ALPHA_S = 2e-6              # the link's latency (the switch adds none)
S = 2.0 * K * N             # bf16 gradients of the K x N weights, and the weights gathered
SYSTEM = {"name": "four", "chips": [{"architecture": "h100-class", "count": G}], "links": {"l": LINK},
          "topology": {"kind": "switched", "link": "l", "switch": FREE_SWITCH},
          "parallelism": {"data": G, "zero": 1, "overlap": False}}


def _study(tmp_path, parameters: dict, **extra) -> str:
    (tmp_path / "four.yaml").write_text(yaml.safe_dump(SYSTEM))
    study = {"name": "four", "architecture": str(tmp_path / "four.yaml"),
             "workloads": [f"gemm:m={M},n={N},k={K},precision=bf16"], "parameters": parameters,
             "objectives": ["maximize throughput_samples_per_s"], "sampler": "grid", **extra}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return str(path)


def test_gradient_sync_is_the_hand_counted_alpha_beta_time_and_link_energy(tmp_path):
    """ZeRO-1 without overlap: after the backward pass the gradients (one bucket of S bytes) are
    reduce-scattered over the 4 chips' ring, (g-1) alpha + (g-1)/g S / B, and after the optimizer
    the weights all-gathered, the same again. Two candidates differing only in link bandwidth
    differ by exactly those bytes over the two bandwidths; each byte a chip sends crosses its
    up and down link at 1 pJ/bit each; no step is shorter than the compute roofline
    (6 MNK flops at the chip's peak) plus both collectives."""
    st = resolve_study(_study(tmp_path, {"links.l.bandwidth": {"choices": ["50 GB/s", "100 GB/s"]}}))
    bw = np.array([50e9, 100e9])
    est = screen_for(st).evaluate({"links.l.bandwidth": bw})
    sync = [2 * ((G - 1) * ALPHA_S + (G - 1) / G * S / b) for b in bw]
    step = est["step_time_s"]
    assert step[0] - step[1] == pytest.approx(sync[0] - sync[1], rel=1e-9)
    arch = load_architecture("h100-class")
    peak = sum(2.0 * u.peak_macs_per_s("bf16") for u in arch.compute if getattr(u, "kind", "") == "systolic")
    for i in range(2):
        assert step[i] >= 6.0 * M * N * K / peak + sync[i]
    link_j = 2 * G * (G - 1) / G * (S + S) * 8 * 1e-12      # RS and AG bytes, up and down links
    assert est["comm_energy_j"] == pytest.approx([link_j, link_j], rel=1e-9)
    # and the simulated step (SimPy, the engine per role) is within 15% of the estimate
    sim = simulate_system(SystemSpec.model_validate(SYSTEM | {"links": {"l": {**LINK, "bandwidth": "50 GB/s"}}}),
                          f"gemm:m={M},n={N},k={K},precision=bf16").summary_row
    assert sim["comm_energy_j"] == pytest.approx(link_j, rel=1e-9)
    assert 0.85 * sim["step_time_s"] <= step[0] <= 1.15 * sim["step_time_s"]


def test_two_stage_optical_scaling_simulates_one_design_within_one_percent(monkeypatch):
    """The 18-point grid simulated whole, against the screen's single best design simulated."""
    calls = []
    sim = dse.system.study.simulate
    monkeypatch.setattr(dse.system.study, "simulate", lambda a, w: calls.append(1) or sim(a, w))
    spec, _, _ = load_spec("optical-scaling")
    full = run_study(spec)
    full_calls = len(calls)
    calls.clear()
    two = run_study(StudySpec.model_validate({**spec.model_dump(), "screen": {"simulate": 1}}))
    assert full_calls == 18 and len(calls) == 1
    best = [df[(df["workload"] == ALL) & df["feasible"]]["throughput_samples_per_s"].max() for df in (full, two)]
    assert best[1] >= 0.99 * best[0]

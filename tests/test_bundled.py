"""Bundled designs reproduce their published peaks and run every kind of workload within physics."""
from __future__ import annotations

import io
import subprocess
import sys

import pandas as pd
import pytest

from dse.sim.engine import simulate
from dse.spec.architecture import SystolicArray, VectorUnit
from dse.spec.loader import bundled_names, load_architecture
from dse.workloads import load_workload

# Published peaks: Jouppi et al. ISCA 2017 (92 TOPS int8, 34 GB/s); NVIDIA H100 SXM datasheet
# (989.4 TFLOPS dense bf16, 66.9 TFLOPS fp32 non-tensor, 3.35 TB/s); Arm Ethos-N77 (4.1 TOPS int8)
# with LPDDR5-6400 x64 (51.2 GB/s, JESD209-5).
PUBLISHED = {
    "tpu-v1-like": {"int8": 92e12, "bandwidth": 34e9},
    "h100-class": {"bf16": 989.4e12, "vector": 66.9e12, "bandwidth": 3.35e12},
    "edge-npu-lpddr5": {"int8": 4.1e12, "bandwidth": 51.2e9},
    # NVIDIA A100 SXM4 80 GB datasheet: 312 TFLOPS dense bf16, 19.5 TFLOPS fp32, 2,039 GB/s
    "a100-class": {"bf16": 312e12, "vector": 19.5e12, "bandwidth": 2.039e12},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_bundled_designs_match_their_published_peaks(name):
    arch = load_architecture(name)
    arrays = [u for u in arch.compute if isinstance(u, SystolicArray)]
    vectors = [u for u in arch.compute if isinstance(u, VectorUnit)]
    for key, value in PUBLISHED[name].items():
        if key == "bandwidth":
            got = sum(m.bandwidth for m in arch.memories)
        elif key == "vector":
            got = sum(v.peak_ops_per_s for v in vectors)
        else:
            got = sum(2 * a.peak_macs_per_s(key) for a in arrays)
        assert got == pytest.approx(value, rel=0.01), key


def test_every_bundled_design_is_listed_and_runs_resnet50_within_its_peak():
    names = bundled_names("architectures")
    assert set(PUBLISHED) | {"reram-imc-isaac"} <= set(names)
    wl = load_workload("resnet50")
    for name in names:
        arch = load_architecture(name)
        r = simulate(arch, wl)
        peak = sum(2 * u.peak_macs_per_s("int8") for u in arch.compute if isinstance(u, SystolicArray))
        imc = any(u.kind == "imc" for u in arch.compute)
        if not imc:
            assert r["throughput_ops_per_s"] <= peak
        static = arch.static_power_w
        assert r["energy_j"] >= static * r["latency_s"] * (1 - 1e-9)   # never below its parts
        if not imc:  # the sum of the areas the file states
            assert r["area_mm2"] == pytest.approx(sum(c.area for c in arch.components()))
        if name == "tpu-v1-like":  # Jouppi et al. 2017: the die is at most 331 mm^2
            assert r["area_mm2"] == pytest.approx(331, rel=0.01)


def test_dse_workload_prints_the_op_table_with_resnet50s_published_macs():
    proc = subprocess.run([sys.executable, "-m", "dse", "workload", "resnet50", "-f", "csv"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(io.StringIO(proc.stdout))
    # torchvision lists ResNet-50 at 4.09 GFLOPs (multiply-accumulates) per 224x224 image
    assert df["macs"].sum() == pytest.approx(4.09e9, rel=0.01)
    assert {"bytes_weights", "bytes_activations", "arithmetic_intensity"} <= set(df.columns)

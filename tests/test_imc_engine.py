"""In-memory compute inside the engine: ADC-dominated energy, resident weights, digital fallback."""
from __future__ import annotations


import pytest

from dse.sim.engine import simulate
from dse.spec.loader import load_architecture
from dse.workloads.ops import Op, Workload


def isaac(**changes):
    a = load_architecture("reram-imc-isaac")
    data = a.model_dump(mode="python")
    imc = data["compute"][0]
    imc.update(changes)
    return type(a).model_validate(data)


def layer(name="fc", m=64, n=256, k=256, deps=()):
    return Op(name, "matmul", m=m, n=n, k=k, precision="int8", deps=tuple(deps))


def test_imc_energy_is_dominated_by_adcs_with_default_parameters():
    r = simulate(isaac(), Workload("fc", [layer()]))
    parts = {k: r[f"energy_crossbars_{k}_j"] for k in ("adc", "dac", "crossbar", "other")}
    assert parts["adc"] == max(parts.values())
    assert parts["adc"] / sum(parts.values()) > 0.5


def test_reprogramming_every_batch_loses_to_keeping_weights_resident():
    batches = 8
    wl = Workload("fc", [layer()])
    resident = simulate(isaac(weights_resident=True), wl)
    reprogram = simulate(isaac(weights_resident=False), wl)
    # per batch, programming adds its energy and time on top of the same MVMs
    assert reprogram["energy_crossbars_programming_j"] > 0
    assert reprogram["latency_s"] > resident["latency_s"]
    e_keep = resident["energy_crossbars_j"] * batches + reprogram["energy_crossbars_programming_j"]
    e_every = reprogram["energy_crossbars_j"] * batches
    assert e_every > e_keep


def test_layers_that_do_not_fit_the_crossbars_fall_back_to_digital_units():
    small = isaac(overrides={"crossbars": 96})  # one ISAAC tile
    # 256 x 256 int8 weights on 128 x 128 crossbars of 2-bit cells: 4 cells per weight, so
    # ceil(256/128) row blocks x ceil(256*4/128) column blocks = 2 x 8 = 16 crossbars per layer
    ops = [layer(f"fc{i}", deps=(f"fc{i-1}",) if i else ()) for i in range(8)]
    r = simulate(small, Workload("mlp", ops))
    units = r.ops.set_index("op")["unit"]
    assert list(units[:6]) == ["crossbars"] * 6          # 6 x 16 = 96 crossbars
    assert list(units[6:]) == ["digital_fallback"] * 2
    assert r["imc_utilisation_crossbars"] == pytest.approx(1.0)


def test_spare_crossbars_copy_the_longest_layers_and_use_faster_defers_to_digital_units():
    # one 256x256 int8 layer needs 16 crossbars; with 64, three spare copies split its
    # 64 input vectors four ways: 16 vectors x 8 bit-serial steps x 100 ns each
    one = Workload("fc", [layer(m=64)])
    r = simulate(isaac(overrides={"crossbars": 64}), one)
    steps = 8                        # int8 inputs through 1-bit DACs
    assert r.ops["compute_s"][0] == pytest.approx(64 / 4 * steps * 100e-9, rel=1e-9)
    assert r["imc_utilisation_crossbars"] == pytest.approx(1.0)
    # "faster": the 32x32 digital array (1.2 GHz) beats 64 vectors x 0.8 us on one copy
    slow = simulate(isaac(overrides={"crossbars": 16}, use="faster"), one)
    assert slow.ops["unit"][0] == "digital_fallback"

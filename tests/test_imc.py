"""The IMC tile model against ISAAC's published numbers and hand counts.

Expected values are worked out here from ISAAC's Table I (as transcribed in
dse/tech/data/imc.yaml, components and totals) or from the stated formula,
never taken from the module.
"""
from __future__ import annotations

import math
from importlib import resources

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.tech.imc import CrossbarParams, imc_gemm_cost, lifetime_years, map_gemm, program_cost

MW, PJ, NS = 1e-3, 1e-12, 1e-9


@pytest.fixture(scope="module")
def isaac() -> CrossbarParams:
    return CrossbarParams.from_library("reram-isaac")


@pytest.fixture(scope="module")
def table() -> dict:
    text = resources.files("dse.tech.data").joinpath("imc.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["technologies"]["reram-isaac"]


def _mw(s: str) -> float:
    value, unit = s.split()
    return float(value) * {"mW": MW, "W": 1.0}[unit]


# ---- energy: ADCs dominate, as ISAAC reports ---------------------------------

def test_adc_is_the_largest_share_of_a_busy_tiles_energy(isaac, table):
    comp, totals = table["components"], table["totals"]
    imas = table["organisation"]["imas_per_tile"]
    # Published: 12 IMAs x 16 mW of ADCs out of a 330 mW tile = 58 %.
    adc_tile_w = imas * _mw(comp["adc"]["power"])
    tile_w = _mw(totals["tile"]["power"])
    published = adc_tile_w / tile_w
    assert published == pytest.approx(0.58, abs=0.005)
    # The model converts 128 columns per 100 ns cycle (1.28 GS/s, ISAAC's text), while
    # Table I's 16 mW is at 1.2 GS/s: at a fixed energy per conversion the ADCs draw
    # 1.28/1.2 x 16 mW, which raises their share to ~0.60.
    adc_at_rate_w = adc_tile_w * 1.28 / 1.2
    expected = adc_at_rate_w / (tile_w - adc_tile_w + adc_at_rate_w)

    # A GEMM that keeps all 96 crossbars busy: K = 128 rows, N = 96 x 128 / 8 weights.
    cost = imc_gemm_cost(isaac, m=64, n=96 * 128 // 8, k=128)
    share = cost.adc_j / cost.total_j
    assert share > 0.5
    assert cost.adc_j == max(cost.energy().values())
    assert share == pytest.approx(published, abs=0.03)      # 1.28/1.2 rate correction is +1.6 points
    assert share == pytest.approx(expected, rel=0.01)       # yaml rounds 1.67 pJ and 0.39 pJ


def test_a_fully_busy_tile_draws_table_i_power(isaac, table):
    comp, totals = table["components"], table["totals"]
    adc_tile_w = 12 * _mw(comp["adc"]["power"])
    expected_w = _mw(totals["tile"]["power"]) + adc_tile_w * (1.28 / 1.2 - 1)  # ADCs at 1.28 GS/s
    cost = imc_gemm_cost(isaac, m=10, n=96 * 16, k=128)
    assert cost.total_j / cost.time_s == pytest.approx(expected_w, rel=0.01)


def test_energy_of_one_mvm_on_one_crossbar_by_hand(isaac, table):
    # 128 x 16 16-bit weights fill one 128 x 128 crossbar (8 cells per weight); one
    # 16-bit input vector = 16 one-bit steps, each converting 128 columns and driving 128 rows.
    comp = table["components"]
    steps, cols, rows = 16, 128, 128
    adc_j = steps * cols * (_mw(comp["adc"]["power"]) / (8 * 1.2e9))          # 1.67 pJ each
    dac_j = steps * rows * (_mw(comp["dac"]["power"]) / 1024 * 100 * NS)      # 0.39 pJ each
    xbar_j = steps * (_mw(comp["crossbar"]["power"]) / 8 * 100 * NS)          # 30 pJ each
    cost = imc_gemm_cost(isaac, m=1, n=16, k=128)
    assert cost.conversions == steps * cols
    assert cost.adc_j == pytest.approx(adc_j, rel=0.01)
    assert cost.dac_j == pytest.approx(dac_j, rel=0.01)
    assert cost.crossbar_j == pytest.approx(xbar_j, rel=1e-9)
    assert cost.macs == 128 * 16


# ---- mapping ------------------------------------------------------------------

def test_crossbar_count_for_256x256_16bit_weights(isaac):
    # ceil(256/128) row blocks x ceil(256 x 8 cells / 128) column blocks = 2 x 16
    mp = map_gemm(isaac, m=1, n=256, k=256, weight_bits=16)
    assert mp.cells_per_weight == 16 // 2
    assert mp.crossbars_needed == 2 * 16
    assert mp.fits and mp.fraction_mapped == 1.0


def test_a_layer_larger_than_the_tile_maps_part_of_n(isaac):
    # 512 x 512 16-bit: 4 row blocks x 32 column blocks = 128 crossbars > 96.
    # 96 // 4 = 24 column blocks of 128 / 8 = 16 weights -> 384 of 512 columns.
    mp = map_gemm(isaac, m=1, n=512, k=512)
    assert mp.crossbars_needed == 128 and not mp.fits
    assert mp.n_mapped == 384
    assert mp.fraction_mapped == pytest.approx(384 / 512)
    cost = imc_gemm_cost(isaac, m=3, n=512, k=512)
    assert cost.macs == 3 * 384 * 512


def test_a_reduction_deeper_than_all_crossbars_maps_nothing(isaac):
    mp = map_gemm(isaac, m=1, n=16, k=128 * 97)      # needs 97 crossbars for one column block
    assert mp.fraction_mapped == 0.0
    cost = imc_gemm_cost(isaac, m=4, n=16, k=128 * 97)
    assert cost.time_s == 0.0 and cost.total_j == 0.0


# ---- time ---------------------------------------------------------------------

def test_mvm_latency_is_16_steps_of_100ns(isaac):
    # 16-bit inputs through 1-bit DACs: 16 steps x 100 ns = 1.6 us per vector.
    assert imc_gemm_cost(isaac, m=1, n=256, k=256).time_s == pytest.approx(16 * 100 * NS)
    assert imc_gemm_cost(isaac, m=10, n=256, k=256).time_s == pytest.approx(10 * 1.6e-6)


def test_a_slow_shared_adc_stretches_each_step(isaac):
    # 128 columns through one ADC at 0.64 GS/s take 200 ns > the 100 ns read.
    slow = CrossbarParams.from_library(adc_sample_rate_hz=0.64e9)
    assert imc_gemm_cost(slow, m=1, n=16, k=128).step_s == pytest.approx(128 / 0.64e9)

def test_wider_dacs_need_fewer_steps():
    # 8-bit inputs on 2-bit DACs: 8 / 2 = 4 steps of 100 ns.
    two_bit = CrossbarParams.from_library(dac_bits=2)
    assert imc_gemm_cost(two_bit, m=1, n=16, k=128, input_bits=8).time_s == pytest.approx(4 * 100 * NS)


# ---- programming and wear ------------------------------------------------------

def test_reprogramming_every_batch_costs_more_than_resident_weights(isaac):
    # 256 x 256 16-bit weights = 1,048,576 bits at 0.1 pJ/bit (Yu & Chen 2016) = 104.9 nJ;
    # 128 rows per crossbar written one at a time at 10 ns = 1.28 us.
    program_j = 256 * 256 * 16 * 0.1 * PJ
    energy_j, time_s, writes = program_cost(isaac, k=256, n=256)
    assert energy_j == pytest.approx(program_j)
    assert time_s == pytest.approx(128 * 10 * NS)
    assert writes == 256 * 256 * 8

    batches = 10
    run_j = imc_gemm_cost(isaac, m=32, n=256, k=256).total_j
    reprogram_each = batches * (energy_j + run_j)
    resident = energy_j + batches * run_j
    assert reprogram_each > resident
    assert reprogram_each - resident == pytest.approx((batches - 1) * program_j)


def test_lifetime_is_endurance_over_rate(isaac):
    rate = 1 / 600.0                                  # all weights rewritten every 10 minutes
    expected = 1e6 / rate / 3.156e7                   # ISAAC-class ReRAM: 1e6 writes per cell
    assert lifetime_years(isaac, rate) == pytest.approx(expected, rel=2e-4)  # Julian year 3.15576e7 s
    assert lifetime_years(isaac, 0.0) == math.inf


# ---- properties ------------------------------------------------------------------

BIG = CrossbarParams.from_library(crossbars=4096)     # every generated layer fits


@settings(max_examples=200, deadline=None)
@given(m=st.integers(1, 2000), dm=st.integers(0, 2000), n=st.integers(1, 600), k=st.integers(1, 600),
       wb=st.integers(1, 16), ib=st.integers(1, 16), fits=st.booleans())
def test_cost_grows_with_m_and_conversions_are_counted(m, dm, n, k, wb, ib, fits):
    p = BIG if fits else CrossbarParams.from_library()
    a = imc_gemm_cost(p, m, n, k, weight_bits=wb, input_bits=ib)
    b = imc_gemm_cost(p, m + dm, n, k, weight_bits=wb, input_bits=ib)
    assert b.total_j >= a.total_j and b.time_s >= a.time_s
    if fits:
        steps = math.ceil(ib / p.dac_bits)
        columns = n * math.ceil(wb / p.bits_per_cell) * math.ceil(k / p.rows)
        assert a.conversions == m * steps * columns
        assert a.time_s == pytest.approx(m * steps * 100 * NS)


# ---- bad parameters ------------------------------------------------------------

@pytest.mark.parametrize("overrides, words", [
    ({"rows": 0}, "rows must be a positive integer"),
    ({"cols": -128}, "cols must be a positive integer"),
    ({"bits_per_cell": 1.5}, "bits_per_cell must be a positive integer"),
    ({"adc_energy_per_conversion_j": -1e-12}, "adc_energy_per_conversion_j must be a finite non-negative"),
    ({"dac_energy_per_row_per_step_j": float("nan")}, "finite non-negative"),
    ({"crossbar_read_s": 0.0}, "crossbar_read_s must be positive"),
    ({"rows": 8192, "cols": 128}, "published ReRAM crossbars are 128x128 (ISAAC"),
    ({"cols": 5000}, "exceeds 4096x4096"),
    ({"adcs_per_crossbar": 129}, "adcs_per_crossbar"),
    ({"crossbar_read_s": "3 GHz"}, "expected a time"),
    ({"rowz": 128}, "unknown IMC parameter(s) rowz"),
])
def test_bad_parameters_raise_clear_errors(overrides, words):
    with pytest.raises(ValueError) as err:
        CrossbarParams.from_library(**overrides)
    assert words in str(err.value)


def test_bad_names_shapes_and_rates(isaac):
    with pytest.raises(ValueError, match="unknown IMC technology 'sram-cim'; known: reram-isaac"):
        CrossbarParams.from_library("sram-cim")
    with pytest.raises(ValueError, match="GEMM dimension k must be a positive integer"):
        map_gemm(isaac, 1, 16, 0)
    with pytest.raises(ValueError, match="reprogram rate"):
        lifetime_years(isaac, -1.0)


def test_overrides_accept_unit_strings():
    p = CrossbarParams.from_library(crossbar_read_s="50 ns", crossbars=12)
    assert p.crossbar_read_s == pytest.approx(50 * NS)
    assert p.area_mm2 == pytest.approx(12 * 0.372 / 96)   # ISAAC tile area per crossbar


def _one_copy_at_a_time(vectors, need, left):
    """ISAAC-style replication as specified: each spare copy goes to the layer with the most
    input vectors per copy (the first among equals); a layer that cannot take one more
    (too few crossbars left, or already a copy per vector) drops out."""
    copies, out = [1] * len(vectors), set()
    while len(out) < len(vectors):
        i = max((j for j in range(len(vectors)) if j not in out),
                key=lambda j: (math.ceil(vectors[j] / copies[j]), -j))
        if need[i] > left or copies[i] >= vectors[i]:
            out.add(i)
            continue
        copies[i] += 1
        left -= need[i]
    return copies


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 400), st.integers(1, 12)), min_size=1, max_size=8),
       st.integers(0, 600))
def test_replicated_layers_get_the_copies_of_one_copy_at_a_time(layers, left):
    from dse.sim.map import replicate

    vectors, need = [v for v, _ in layers], [n for _, n in layers]
    assert replicate(vectors, need, left) == _one_copy_at_a_time(vectors, need, left)


# ---- peak rate by precision ------------------------------------------------------

@pytest.mark.parametrize("precision, bits", [("fp16", 16), ("int8", 8)])
def test_peak_follows_the_bits_of_the_precision(precision, bits):
    """By hand from ISAAC's Table I: a 128 x 128 crossbar of 2-bit cells holds 128 / (bits / 2)
    weights per row; a 1-bit DAC applies an input in ``bits`` steps of 100 ns; the chip's
    168 tiles x 12 IMAs x 8 crossbars all work at once."""
    from dse.spec.loader import load_architecture

    unit = next(c for c in load_architecture("reram-imc-isaac").compute if c.kind == "imc")
    crossbars = 168 * 12 * 8
    macs_per_step = 128 * (128 // (bits // 2))
    by_hand = 2 * macs_per_step / (bits * 100 * NS) * crossbars
    assert unit.peak_ops(precision) == pytest.approx(by_hand, rel=1e-9)


def test_no_run_is_above_the_peak_the_report_draws():
    """The roofline the report draws (peak of every unit at the run's precision) bounds an
    int8 GEMM on the crossbars."""
    from dse.report.build import peak_of
    from dse.sim.engine import simulate
    from dse.spec.loader import load_architecture
    from dse.workloads import load_workload

    arch = load_architecture("reram-imc-isaac")
    result = simulate(arch, load_workload("gemm"))
    assert result.ops["precision"].eq("int8").all()
    assert result.summary["throughput_ops_per_s"].iloc[0] <= peak_of(arch, "int8")["peak_ops_per_s"]

"""Analog in-memory-compute (IMC) tile: ReRAM crossbars doing matrix-vector products.

A weight matrix (K x N, the ``b`` operand of a GEMM) is written into crossbar cells;
each input vector (a row of ``a``) is applied to the rows bit-serially through DACs,
the column currents are held (S+H) and digitised by ADCs, and shift-and-add units
combine bit slices. Per-event energies come from ISAAC's Table I (dse/tech/data/imc.yaml),
each a component's power divided by its event rate at full activity.

Pure arithmetic, no simulation: the engine decides queuing; this module decides cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources
from typing import Any

from dse.diskcache import bundled_yaml
from dse.tech.memory import SECONDS_PER_YEAR  # a Julian year (365.25 days)
from dse.units import to_si


#: Largest crossbar side accepted. Published ReRAM MVM crossbars are 128 x 128
#: (ISAAC, ISCA 2016) and 256 x 256 (PRIME, ISCA 2016); IR drop and sneak currents
#: limit larger ones, so a side beyond 4096 is taken to be a typo.
MAX_CROSSBAR_SIDE = 4096

# Integer counts; every other field is a float with a dimension for dse.units.to_si.
_COUNTS = ("rows", "cols", "bits_per_cell", "crossbars", "weight_bits", "input_bits",
           "dac_bits", "adc_bits", "adcs_per_crossbar")
_DIMENSIONS: dict[str, str | None] = {
    **{name: None for name in _COUNTS},
    "crossbar_read_s": "time",
    "adc_sample_rate_hz": "frequency",
    "adc_energy_per_conversion_j": "energy",
    "dac_energy_per_row_per_step_j": "energy",
    "crossbar_read_energy_per_step_j": "energy",
    "sample_hold_energy_per_column_per_step_j": "energy",
    "shift_add_energy_per_crossbar_per_step_j": "energy",
    "buffer_energy_per_crossbar_per_step_j": "energy",
    "cell_write_energy_j_per_bit": "energy_per_bit",
    "cell_write_time_s": "time",
    "endurance_cycles": None,
    "leakage_w_per_crossbar": "power",
    "area_mm2_per_crossbar": "area",
}


@dataclass(frozen=True, slots=True)
class CrossbarParams:
    """One IMC tile: ``crossbars`` identical rows x cols crossbars and their periphery (SI units).

    Energies are per event. ``buffer_energy_per_crossbar_per_step_j`` lumps the local
    buffers and tile periphery (input/output registers, eDRAM, bus, router share)
    charged per active crossbar per step; leakage and area are per crossbar so that
    changing ``crossbars`` scales them.
    """

    rows: int
    cols: int
    bits_per_cell: int
    crossbars: int
    weight_bits: int
    input_bits: int
    dac_bits: int
    adc_bits: int
    adcs_per_crossbar: int
    crossbar_read_s: float
    adc_sample_rate_hz: float
    adc_energy_per_conversion_j: float
    dac_energy_per_row_per_step_j: float
    crossbar_read_energy_per_step_j: float
    sample_hold_energy_per_column_per_step_j: float
    shift_add_energy_per_crossbar_per_step_j: float
    buffer_energy_per_crossbar_per_step_j: float
    cell_write_energy_j_per_bit: float
    cell_write_time_s: float
    endurance_cycles: float
    leakage_w_per_crossbar: float = 0.0
    area_mm2_per_crossbar: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _COUNTS:
                if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                    raise ValueError(f"IMC {f.name} must be a positive integer, got {value!r}")
            elif not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"IMC {f.name} must be a finite non-negative number, got {value!r}")
        for name in ("crossbar_read_s", "adc_sample_rate_hz", "cell_write_time_s", "endurance_cycles"):
            if getattr(self, name) <= 0:
                raise ValueError(f"IMC {name} must be positive, got {getattr(self, name)!r}")
        if self.rows > MAX_CROSSBAR_SIDE or self.cols > MAX_CROSSBAR_SIDE:
            raise ValueError(
                f"IMC crossbar {self.rows}x{self.cols} exceeds {MAX_CROSSBAR_SIDE}x{MAX_CROSSBAR_SIDE}; "
                "published ReRAM crossbars are 128x128 (ISAAC, 2016) and 256x256 (PRIME, 2016)")
        if self.adcs_per_crossbar > self.cols:
            raise ValueError(f"IMC adcs_per_crossbar ({self.adcs_per_crossbar}) exceeds the "
                             f"{self.cols} columns it converts")

    @property
    def cells_per_weight(self) -> int:
        """Adjacent columns holding one weight's bit slices."""
        return math.ceil(self.weight_bits / self.bits_per_cell)

    @property
    def area_mm2(self) -> float:
        return self.area_mm2_per_crossbar * self.crossbars

    @property
    def leakage_w(self) -> float:
        return self.leakage_w_per_crossbar * self.crossbars

    @classmethod
    def from_library(cls, name: str = "reram-isaac", **overrides: Any) -> "CrossbarParams":
        """Parameters of a named entry of dse/tech/data/imc.yaml, with fields overridden.

        Overrides take SI numbers or unit strings ("50 ns"); an unknown field is a ValueError.
        """
        unknown = set(overrides) - set(_DIMENSIONS)
        if unknown:
            raise ValueError(f"unknown IMC parameter(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(_DIMENSIONS)}")
        values = {**_library_defaults(name), **overrides}
        for key, dim in _DIMENSIONS.items():
            if dim is not None and isinstance(values.get(key), str):
                values[key] = to_si(values[key], dim)
        return cls(**values)


@lru_cache(maxsize=None)
def _imc_table() -> dict[str, Any]:
    return bundled_yaml(resources.files("dse.tech.data").joinpath("imc.yaml"))["technologies"]


def _library_defaults(name: str) -> dict[str, Any]:
    table = _imc_table()
    if name not in table:
        raise ValueError(f"unknown IMC technology '{name}'; known: {', '.join(table)}")
    e = table[name]
    org, tim, der, wr = e["organisation"], e["timing"], e["derived"], e["cell_write"]
    energy = lambda v: to_si(v, "energy")  # noqa: E731
    return {
        "rows": org["crossbar_rows"],
        "cols": org["crossbar_cols"],
        "bits_per_cell": org["bits_per_cell"],
        "crossbars": der["crossbars_per_tile"],
        "weight_bits": org["weight_bits"],
        "input_bits": org["input_bits"],
        "dac_bits": org["dac_bits"],
        "adc_bits": org["adc_bits"],
        "adcs_per_crossbar": org["adcs_per_ima"] // org["crossbars_per_ima"],
        "crossbar_read_s": to_si(tim["crossbar_read_cycle"], "time"),
        "adc_sample_rate_hz": to_si(tim["adc_sample_rate"], "frequency"),
        "adc_energy_per_conversion_j": energy(der["adc_energy_per_conversion"]),
        "dac_energy_per_row_per_step_j": energy(der["dac_energy_per_row_cycle"]),
        "crossbar_read_energy_per_step_j": energy(der["crossbar_energy_per_read_cycle"]),
        "sample_hold_energy_per_column_per_step_j": energy(der["sample_hold_energy_per_column_cycle"]),
        "shift_add_energy_per_crossbar_per_step_j": energy(der["shift_add_energy_per_crossbar_cycle"]),
        "buffer_energy_per_crossbar_per_step_j": (energy(der["ima_registers_energy_per_crossbar_cycle"])
                                                  + energy(der["tile_periphery_energy_per_crossbar_cycle"])),
        "cell_write_energy_j_per_bit": to_si(wr["write_energy"], "energy_per_bit"),
        "cell_write_time_s": to_si(wr["write_latency"], "time"),
        "endurance_cycles": float(wr["endurance_cycles"]),
        "area_mm2_per_crossbar": to_si(der["area_per_crossbar"], "area"),
    }


# ---- mapping ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Mapping:
    """Where a K x N weight matrix goes: crossbars needed, and how much of N fits."""

    cells_per_weight: int
    row_blocks: int              # ceil(K / rows): crossbars stacked along K, partial sums added digitally
    col_blocks_needed: int       # ceil(N * cells_per_weight / cols)
    crossbars_needed: int
    fits: bool
    n_mapped: int                # output columns (of N) held in crossbars; the rest runs digitally
    crossbars_used: int
    active_columns: int          # physical columns read per step, over all crossbars in use
    fraction_mapped: float       # n_mapped / N


def _check_shape(**dims: int) -> None:
    for name, v in dims.items():
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"GEMM dimension {name} must be a positive integer, got {v!r}")


def map_gemm(params: CrossbarParams, m: int, n: int, k: int, weight_bits: int | None = None) -> Mapping:
    """Map a K x N weight matrix onto the tile's crossbars, whole output columns at a time.

    A weight takes ceil(weight_bits / bits_per_cell) adjacent columns (bit slices may
    straddle two crossbars: slices are combined digitally anyway). If the matrix does
    not fit, as many column blocks as fit, each spanning all of K, are mapped; if not
    even one K-deep block fits, nothing is (fraction_mapped = 0). ``m`` does not affect
    the mapping and is checked only.
    """
    wb = params.weight_bits if weight_bits is None else weight_bits
    _check_shape(m=m, n=n, k=k, weight_bits=wb)
    cpw = math.ceil(wb / params.bits_per_cell)
    row_blocks = math.ceil(k / params.rows)
    col_blocks = math.ceil(n * cpw / params.cols)
    needed = row_blocks * col_blocks
    fits = needed <= params.crossbars
    n_mapped = n if fits else min(n, (params.crossbars // row_blocks) * params.cols // cpw)
    used = row_blocks * math.ceil(n_mapped * cpw / params.cols)
    return Mapping(cpw, row_blocks, col_blocks, needed, fits, n_mapped, used,
                   n_mapped * cpw * row_blocks, n_mapped / n)


# ---- compute ---------------------------------------------------------------

def crossbars_for(params: CrossbarParams, m: int, n: int, k: int, repeats: int = 1,
                  weight_bits: int | None = None) -> int:
    """Crossbars one copy of a (K x N) weight matrix needs, times ``repeats`` (the groups of a
    grouped convolution each sit on their own crossbars)."""
    return map_gemm(params, m, n, k, weight_bits=weight_bits).crossbars_needed * repeats


@dataclass(frozen=True, slots=True)
class ImcCost:
    """Time and energy (by component) of the mapped part of a GEMM on the tile."""

    mapping: Mapping
    steps_per_vector: int
    step_s: float
    time_s: float
    conversions: int
    macs: int                    # MACs done in the crossbars (m * n_mapped * k)
    adc_j: float
    dac_j: float
    crossbar_j: float
    other_j: float               # sample-and-hold, shift-and-add, registers and tile periphery
    leakage_j: float

    @property
    def total_j(self) -> float:
        return self.adc_j + self.dac_j + self.crossbar_j + self.other_j + self.leakage_j

    def energy(self) -> dict[str, float]:
        """Energy by component name, for an energy ledger."""
        return {key: getattr(self, f"{key}_j") for key in ("adc", "dac", "crossbar", "other", "leakage")}


def imc_gemm_cost(params: CrossbarParams, m: int, n: int, k: int,
                  weight_bits: int | None = None, input_bits: int | None = None) -> ImcCost:
    """Cost of streaming M input vectors through the crossbars holding the mapped weights.

    Each vector is applied bit-serially in ceil(input_bits / dac_bits) steps. In a step
    every mapped crossbar reads at once (all get the same vector, sliced along K) and its
    active columns are converted by its ADCs; S+H lets the read and the conversions
    pipeline, so a step lasts max(crossbar_read_s, columns / (adcs * sample rate)).
    Vectors follow one another: time = M * steps * step. No weight replication.
    """
    ib = params.input_bits if input_bits is None else input_bits
    _check_shape(input_bits=ib)
    mp = map_gemm(params, m, n, k, weight_bits)
    steps = math.ceil(ib / params.dac_bits)
    busiest_cols = min(params.cols, mp.n_mapped * mp.cells_per_weight)
    convert_s = busiest_cols / (params.adcs_per_crossbar * params.adc_sample_rate_hz)
    step_s = max(params.crossbar_read_s, convert_s) if mp.n_mapped else 0.0
    vector_steps = m * steps if mp.n_mapped else 0
    col_blocks_used = mp.crossbars_used // mp.row_blocks
    conversions = vector_steps * mp.active_columns
    time_s = vector_steps * step_s
    p = params
    return ImcCost(
        mapping=mp, steps_per_vector=steps, step_s=step_s, time_s=time_s,
        conversions=conversions, macs=m * mp.n_mapped * k,
        adc_j=conversions * p.adc_energy_per_conversion_j,
        # every crossbar has its own row DACs: K rows driven in each column block
        dac_j=vector_steps * k * col_blocks_used * p.dac_energy_per_row_per_step_j,
        crossbar_j=vector_steps * mp.crossbars_used * p.crossbar_read_energy_per_step_j,
        other_j=vector_steps * (mp.active_columns * p.sample_hold_energy_per_column_per_step_j
                                + mp.crossbars_used * (p.shift_add_energy_per_crossbar_per_step_j
                                                       + p.buffer_energy_per_crossbar_per_step_j)),
        leakage_j=p.leakage_w * time_s,
    )


# ---- programming and wear ----------------------------------------------------

def program_cost(params: CrossbarParams, k: int, n: int,
                 weight_bits: int | None = None) -> tuple[float, float, int]:
    """(energy_j, time_s, cell_writes) to write the mapped part of a K x N weight matrix once.

    Each used cell is written once at bits_per_cell * cell_write_energy_j_per_bit; a
    crossbar programs one row per cell_write_time_s and crossbars program in parallel,
    so time = min(K, rows) rows. Device energy only: no write drivers, no
    program-and-verify iterations of multi-level cells (a lower bound).
    """
    mp = map_gemm(params, 1, n, k, weight_bits)
    cell_writes = k * mp.n_mapped * mp.cells_per_weight
    energy_j = cell_writes * params.bits_per_cell * params.cell_write_energy_j_per_bit
    time_s = min(k, params.rows) * params.cell_write_time_s if mp.n_mapped else 0.0
    return energy_j, time_s, cell_writes


def lifetime_years(params: CrossbarParams, reprogram_rate_per_s: float) -> float:
    """Years until cells reach their endurance when all weights are rewritten at this rate.

    Assumes ideal wear levelling: every cell is written equally often, once per reprogram.
    """
    if not math.isfinite(reprogram_rate_per_s) or reprogram_rate_per_s < 0:
        raise ValueError(f"reprogram rate must be a finite non-negative rate, got {reprogram_rate_per_s!r}")
    if reprogram_rate_per_s == 0:
        return math.inf
    return params.endurance_cycles / reprogram_rate_per_s / SECONDS_PER_YEAR

"""Plausibility ranges of architecture fields, and the warnings they give.

A value outside its range is accepted (a study may well explore it) but earns a
warning naming the file, line and field, because it is far more often a slip: a
bare number is read in SI units, so ``capacity: 4`` is 4 bytes and
``bandwidth: 256`` is 256 B/s. The ranges are deliberately wide, about two
orders of magnitude beyond the parts dse bundles or that have been built:

==========================  ==========================  ==========================================
field                       range                       reason
==========================  ==========================  ==========================================
compute ``clock``           1 MHz – 10 GHz              shipping accelerators run 0.3–2 GHz
``rows``, ``cols``          1 – 4096                    TPU v1: 256x256
compute ``count``           1 – 100,000                 a wafer-scale chip has ~10^5 small cores
``lanes``                   1 – 1,000,000
``macs_per_cycle``          1/64 – 64 per PE            sparse or packed int4 MACs: a few per PE
``ops_per_lane_per_cycle``  1/64 – 64
``energy_per_mac``/``op``   0.01 fJ – 1 nJ (or 0)       7 nm int8 MAC: ~0.1 pJ
SRAM ``capacity``           64 B – 64 GiB               Cerebras WSE-3: 44 GB on the wafer
SRAM ``bandwidth``          1 MB/s – 1 PB/s
memory ``capacity``         1 MiB – 1 PiB               per tier (all channels)
``bandwidth_per_channel``   1 MB/s – 100 TB/s           an HBM3E stack: ~1.2 TB/s
memory ``channels``         1 – 1024
``latency``                 0.1 ns – 10 ms (or 0)       DRAM ~15 ns, NVMe flash ~100 µs
``read/write_energy``       0.01 fJ/bit – 1 nJ/bit      HBM ~4 pJ/bit, DDR ~15 pJ/bit
``leakage``, power          0 – 10 kW
``area``                    0 – 100,000 mm²             a 300 mm wafer is ~70,000 mm²
``technology_node``         1 nm – 1 µm
``tdp``                     1 mW – 100 kW
==========================  ==========================================
"""
from __future__ import annotations

from typing import Any, Iterator

from dse.units import fmt

#: field -> (low, high) in SI units (areas in mm^2); per component kind where the meaning differs
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("compute", "clock"): (1e6, 1e10),
    ("compute", "rows"): (1, 4096),
    ("compute", "cols"): (1, 4096),
    ("compute", "count"): (1, 1e5),
    ("compute", "lanes"): (1, 1e6),
    ("compute", "macs_per_cycle"): (1 / 64, 64),
    ("compute", "ops_per_lane_per_cycle"): (1 / 64, 64),
    ("compute", "energy_per_mac"): (1e-17, 1e-9),
    ("compute", "energy_per_op"): (1e-17, 1e-9),
    ("sram", "capacity"): (64, 64 * 2**30),
    ("sram", "bandwidth"): (1e6, 1e15),
    ("sram", "read_energy"): (1e-17, 1e-9),
    ("sram", "write_energy"): (1e-17, 1e-9),
    ("memories", "capacity"): (2**20, 2**50),
    ("memories", "bandwidth_per_channel"): (1e6, 1e14),
    ("memories", "channels"): (1, 1024),
    ("memories", "latency"): (1e-10, 1e-2),
    ("memories", "read_energy"): (1e-17, 1e-9),
    ("memories", "write_energy"): (1e-17, 1e-9),
    ("memories", "background_power"): (0, 1e4),
    ("*", "leakage"): (0, 1e4),
    ("*", "area"): (0, 1e5),
    ("", "technology_node"): (1e-9, 1e-6),
    ("", "tdp"): (1e-3, 1e5),
}

#: fields where 0 means "not modelled" and is never implausible
_ZERO_OK = {"energy_per_mac", "energy_per_op", "read_energy", "write_energy", "latency", "leakage",
            "area", "background_power"}


def _show(value: float, dimension: str | None) -> str:
    if dimension is None or not 1e-24 <= abs(value) <= 1e24:
        from dse.units import DIMENSIONS

        unit = f" {DIMENSIONS[dimension][0]}" if dimension else ""
        return f"{value:.4g}{unit}"
    try:
        return fmt(value, dimension)
    except Exception:  # noqa: BLE001 - a display helper must not fail on an odd value
        return f"{value:.6g}"


def _fields(arch) -> Iterator[tuple[tuple, str, str, type, Any]]:
    """(loc, section, field, model, value) of every numeric field that has a range."""
    for key in ("technology_node", "tdp"):
        yield (key,), "", key, type(arch), getattr(arch, key)
    for section in ("compute", "sram", "memories", "static"):
        for i, comp in enumerate(getattr(arch, section)):
            for name in type(comp).model_fields:
                yield (section, i, name), section, name, type(comp), getattr(comp, name)


def plausibility_warnings(arch, raw: Any) -> list[tuple[tuple, str]]:
    """(field location, message) for each field of ``arch`` outside its plausible range.

    ``raw`` is the data as written (to tell a bare number from a unit string).
    """
    from dse.spec.quantities import field_dimension

    out: list[tuple[tuple, str]] = []
    for loc, section, name, model, value in _fields(arch):
        rng = RANGES.get((section, name)) or RANGES.get(("*", name))
        if rng is None or value is None:
            continue
        values = value.items() if isinstance(value, dict) else [(None, value)]
        dim = field_dimension(model, name)
        if name in ("energy_per_mac",):
            dim = "energy"
        for sub, v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if v == 0 and name in _ZERO_OK:
                continue
            low, high = rng
            if low <= v <= high:
                continue
            where = loc + ((sub,) if sub is not None else ())
            written = _lookup(raw, where)
            bare = dim is not None and isinstance(written, (int, float)) and not isinstance(written, bool)
            side = "small" if v < low else "large"
            text = (f"{written!r} is a bare number, read in SI units as {_show(v, dim)}, which is "
                    f"implausibly {side} (expected {_show(low, dim)} to {_show(high, dim)}); write the "
                    f"unit, e.g. '{_example(dim)}'") if bare else (
                    f"{_show(v, dim)} is implausibly {side} (expected {_show(low, dim)} to "
                    f"{_show(high, dim)}; see dse/spec/plausible.py)")
            out.append((where, text))
    return out


def _example(dim: str) -> str:
    from dse.units import DIMENSIONS

    return DIMENSIONS[dim][1]


def _lookup(data: Any, loc: tuple) -> Any:
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return None
    return cur

"""SI floats written for people: ``1.19 GHz``, ``12 MiB``, ``5.8 pJ/bit``.

One formatter for every value a person reads (tables, `dse check`, error messages), in plain
Python so that showing a number never loads Pint. Units are the symbols of
:data:`DIMENSION_UNITS`, as Pint reads them back.
"""
from __future__ import annotations

import math

#: Pint-readable unit of each dimension of dse.units.DIMENSIONS (SI, as tables hold them).
DIMENSION_UNITS = {
    "time": "s", "frequency": "Hz", "bytes": "B", "bandwidth": "B/s", "energy": "J",
    "energy_per_bit": "J/bit", "power": "W", "area": "mm**2", "compute_rate": "op/s", "length": "m",
}
_PREFIXES = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"),
             (1e-9, "n"), (1e-12, "p"), (1e-15, "f")]
_BINARY = [(2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")]
#: Units shown with a symbol after the number: SI prefixes go on the unit (1.19 GHz).
_SI = {"s", "Hz", "B/s", "J", "J/bit", "W", "m", "op/s"}
_PRETTY = {"mm**2": "mm²", "op/s": "op/s", "J/bit": "J/bit"}


def _digits(x: float, sig: int = 3) -> str:
    text = f"{x:.{sig}g}"
    if "e" in text:  # 1e+03 when rounding crosses a decade: print it plainly
        text = f"{float(text):.0f}"
    return text


def human(value, unit: str | None = None, sig: int = 3) -> str:
    """``value`` (an SI float) for a table read by people: ``1.19 GHz``, ``12 MiB``, ``0.81 W``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    unit = unit or ""
    if unit == "B" and abs(value) >= 1024:
        for scale, name in _BINARY:
            if abs(value) >= scale:
                return f"{_digits(value / scale, sig)} {name}"
    if unit in _SI:
        if value == 0:
            return f"0 {unit}"
        for scale, prefix in _PREFIXES:
            if abs(value) >= scale * 0.9995:
                return f"{_digits(value / scale, sig)} {prefix}{unit}"
        return f"{value:.{sig}g} {unit}"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
        number = f"{int(value):,}" if abs(value) >= 1e4 else str(int(value))
    elif abs(value) >= 1e4:
        for scale, prefix in _PREFIXES[:4]:
            if abs(value) >= scale:
                number = f"{_digits(value / scale, sig)}{prefix}"
                break
    else:
        number = _digits(value, sig) if abs(value) >= 1e-3 else f"{value:.{sig}g}"
    if unit in ("", "1"):
        return number
    return f"{number} {_PRETTY.get(unit, unit)}"

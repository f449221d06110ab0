"""The one place where unit strings such as "819 GB/s" become SI floats.

Inside dse every quantity is a plain float in SI base units (seconds, bytes,
joules, watts, hertz), except areas, which are mm^2 and carry ``_mm2`` in their
names. Plain numbers in YAML are taken as already being in those units.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pint



def _registry() -> pint.UnitRegistry:
    """Pint's default units, except that information (bit, byte) is a dimension.

    Pint treats the bit as dimensionless, which would let "24 MiB" pass as a
    frequency-free number and "3 GHz" pass as a bandwidth; we need it checked.
    """
    base = Path(pint.__file__).parent
    lines: list[str] = []
    for line in (base / "default_en.txt").read_text().splitlines():
        if line.strip().startswith("@import"):
            lines.extend((base / line.split()[1]).read_text().splitlines())
        elif line.strip() == "bit = []":
            lines.append("bit = [information]")
        else:
            lines.append(line)
    ureg = pint.UnitRegistry(None)
    ureg.load_definitions(lines)
    # Operation counts, for compute rates such as "989 TFLOPS" or "92 TOPS".
    ureg.define("operation = [operation] = op")
    ureg.define("FLOP = operation")
    ureg.define("FLOPS = operation / second")
    ureg.define("OPS = operation / second")
    ureg.define("MAC = 2 * operation")
    return ureg


_ureg = _registry()

# name -> (pint unit in which the SI float is expressed, example for messages)
DIMENSIONS: dict[str, tuple[str, str]] = {
    "time": ("second", "100 ns"),
    "frequency": ("hertz", "700 MHz"),
    "bytes": ("byte", "24 MiB"),
    "bandwidth": ("byte / second", "819 GB/s"),
    "energy": ("joule", "0.2 pJ"),
    "energy_per_bit": ("joule / bit", "3.9 pJ/bit"),
    "power": ("watt", "40 W"),
    "area": ("millimeter ** 2", "331 mm^2"),
    "compute_rate": ("operation / second", "989 TFLOPS"),
    "length": ("meter", "28 nm"),
}


@lru_cache(maxsize=4096)
def _parse(text: str) -> pint.Quantity:
    return _ureg.Quantity(text)


_LABELS = {
    "time": "a time", "frequency": "a frequency", "bytes": "a size in bytes",
    "bandwidth": "a bandwidth", "energy": "an energy", "energy_per_bit": "an energy per bit",
    "power": "a power", "area": "an area", "compute_rate": "a compute rate", "length": "a length",
}


def _describe(q: pint.Quantity) -> str:
    for name, (unit, _) in DIMENSIONS.items():
        if q.dimensionality == _ureg(unit).dimensionality:
            return _LABELS[name]
    return f"a quantity of dimension {q.dimensionality}"


def to_si(value: object, dimension: str) -> float:
    """Convert a YAML value ("819 GB/s" or a plain number) to an SI float.

    Raises ValueError with a message naming the expected dimension when the
    string has another dimension ("3 GHz" given as a bandwidth) or does not parse.
    """
    unit, example = DIMENSIONS[dimension]
    if isinstance(value, bool):
        raise ValueError(f"expected {_LABELS[dimension]} such as '{example}', got {value!r}")
    if isinstance(value, (int, float)):
        return _finite(float(value), value, dimension)
    if not isinstance(value, str):
        raise ValueError(f"expected {_LABELS[dimension]} such as '{example}', got {value!r}")
    try:
        q = _parse(value.strip())
    except Exception:  # pint raises several types for garbage input
        raise ValueError(f"cannot read {value!r} as {_LABELS[dimension]} (e.g. '{example}')") from None
    if not hasattr(q, "dimensionality"):  # a bare number such as "42"
        return _finite(float(q), value, dimension)
    if q.dimensionless:
        return _finite(float(q.magnitude), value, dimension)
    target = _ureg(unit)
    if q.dimensionality != target.dimensionality:
        raise ValueError(
            f"{value!r} is {_describe(q)}, expected {_LABELS[dimension]} such as '{example}'"
        )
    return _finite(float(q.to(unit).magnitude), value, dimension)


def _finite(x: float, value: object, dimension: str) -> float:
    if not math.isfinite(x):
        raise ValueError(f"{value!r} is not a finite {dimension.replace('_', ' ')}")
    return x


def fmt(value: float, dimension: str) -> str:
    """Human-readable rendering of an SI float (used by `dse check`)."""
    unit, _ = DIMENSIONS[dimension]
    q = _ureg.Quantity(value, unit)
    if dimension == "bytes":
        return f"{q.to_compact('byte'):~.4g}" if value < 1024 else f"{q.to('MiB'):~.4g}" if value < 2**30 else f"{q.to('GiB'):~.4g}"
    if dimension == "area":
        return f"{value:.4g} mm²"
    return f"{q.to_compact():~.4g}"

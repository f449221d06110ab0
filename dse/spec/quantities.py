"""Pydantic field types that accept unit strings and hold SI floats."""
from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from dse.units import to_si


def _unit(dimension: str) -> BeforeValidator:
    return BeforeValidator(lambda v: to_si(v, dimension))


# Strictly positive quantities (a zero bandwidth or clock is a mistake).
Seconds = Annotated[float, _unit("time"), Field(ge=0)]
Hertz = Annotated[float, _unit("frequency"), Field(gt=0)]
Bytes = Annotated[float, _unit("bytes"), Field(gt=0)]
BytesPerSecond = Annotated[float, _unit("bandwidth"), Field(gt=0)]
Joules = Annotated[float, _unit("energy"), Field(ge=0)]
JoulesPerBit = Annotated[float, _unit("energy_per_bit"), Field(ge=0)]
Watts = Annotated[float, _unit("power"), Field(ge=0)]
SquareMillimetres = Annotated[float, _unit("area"), Field(ge=0)]
Metres = Annotated[float, _unit("length"), Field(gt=0)]
OpsPerSecond = Annotated[float, _unit("compute_rate"), Field(gt=0)]

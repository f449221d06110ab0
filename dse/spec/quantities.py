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


#: the dimension of each quantity type, so callers (the search) can check a unit string
#: against the field it is meant for
DIMENSION_OF = {
    Seconds: "time", Hertz: "frequency", Bytes: "bytes", BytesPerSecond: "bandwidth",
    Joules: "energy", JoulesPerBit: "energy_per_bit", Watts: "power", SquareMillimetres: "area",
    Metres: "length", OpsPerSecond: "compute_rate",
}


def field_dimension(model: type, name: str) -> str | None:
    """The dimension of field ``name`` of a pydantic model (None: a plain number or text)."""
    import types
    from typing import Union, get_args, get_origin

    f = model.model_fields.get(name)
    if f is None:
        return None
    ann = f.annotation
    candidates = [ann]
    if get_origin(ann) in (Union, types.UnionType):
        candidates = list(get_args(ann))
    for c in candidates:
        for alias, dim in DIMENSION_OF.items():
            if c == alias or (get_args(alias) and c is get_args(alias)[0] and f.metadata
                              and any(m in get_args(alias) for m in f.metadata)):
                return dim
    return None


def dimension_at(root, path: str) -> str | None:
    """The dimension of the field a dotted ``path`` sets in a design (an architecture or a
    system of chips): ``compute.mxu.clock``, ``memories.0.channels``, ``links.ib.latency``,
    ``topology.inter.switch.bandwidth``. Components in a list are found by name or index,
    entries of a mapping by key. None: a plain number, text, or a path that names nothing."""
    from pydantic import BaseModel

    parts = path.replace("[", ".").replace("]", "").split(".")
    obj = root
    for part in parts[:-1]:
        if isinstance(obj, BaseModel):
            obj = getattr(obj, part, None)
        elif isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, (list, tuple)):
            named = next((c for c in obj if getattr(c, "name", None) == part), None)
            obj = named if named is not None else (obj[int(part)] if part.isdigit() and int(part) < len(obj)
                                                   else None)
        else:
            return None
    return field_dimension(type(obj), parts[-1]) if isinstance(obj, BaseModel) else None

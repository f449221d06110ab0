"""Generators registered by name, and parsing of ``name:key=value,...`` workload specs."""
from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from dse.errors import SpecError
from dse.workloads.builder import check_precision
from dse.workloads.ops import Workload

#: Parameters every generator accepts in addition to its own (handled here, not per model).
COMMON_PARAMS: dict[str, Any] = {"train": False}


@dataclass(frozen=True)
class GeneratorInfo:
    """What ``dse list workloads`` shows: a name, one line, and parameters with defaults."""

    name: str
    description: str
    params: dict[str, Any]
    func: Callable[..., Workload] = field(repr=False, compare=False)
    types: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


_GENERATORS: dict[str, GeneratorInfo] = {}


def register(name: str, description: str, **defaults: Any):
    """Decorator registering a generator under ``name``; ``defaults`` override its signature's."""

    def wrap(func: Callable[..., Workload]) -> Callable[..., Workload]:
        sig = inspect.signature(func)
        hints = typing.get_type_hints(func)
        params = {p.name: p.default for p in sig.parameters.values()}
        unknown = set(defaults) - set(params)
        if unknown:
            raise TypeError(f"{name}: defaults for unknown parameters {sorted(unknown)}")
        params.update(defaults)
        params.update(COMMON_PARAMS)
        types_ = {p: hints.get(p, Any) for p in params}
        types_["train"] = bool
        _GENERATORS[name] = GeneratorInfo(name, description, params, func, types_)
        return func

    return wrap


def generators() -> dict[str, GeneratorInfo]:
    """All registered generators by name."""
    return dict(_GENERATORS)


# ---- parsing ---------------------------------------------------------------

def parse_value(text: str) -> Any:
    """Read a parameter value as bool, int, float or, failing those, the string itself."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text.strip())
        except ValueError:
            pass
    return text.strip()


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``gpt:layers=24,phase=decode`` into ("gpt", {"layers": 24, "phase": "decode"})."""
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"expected key=value, got {item!r}", where=spec)
        params[key.strip()] = parse_value(value)
    return name.strip(), params


#: Largest integer parameter a generator accepts.
MAX_INT = 2**40
#: Parameters that multiply the number of ops a generator builds, and their largest values
#: (GPT-3 has 96 layers and 96 heads; the largest MoE layers have a few hundred experts).
COUNT_LIMITS = {"layers": 4096, "heads": 4096, "experts": 4096, "tables": 4096}


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Check ``value`` against a parameter's annotation, converting where lossless."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise SpecError(f"must be one of {', '.join(map(str, choices))}; got {value!r}",
                            field=name)
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except SpecError as e:
                errors.append(e)
        raise errors[0]
    if origin is list:
        return value  # lists are parsed by the generator (e.g. "1024-4096-1024")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(f"expects true or false, got {value!r}", field=name)
    if hint is int:
        if isinstance(value, bool):
            raise SpecError(f"expects an integer, got {value!r}", field=name)
        if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_INT:
            value = int(value)  # "tokens=1e6"
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise SpecError(f"{value:.3g} is out of range (at most 2^40)", field=name)
            return value
        raise SpecError(f"expects an integer, got {value!r}", field=name)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not (abs(value) <= MAX_INT):  # also NaN
                raise SpecError(f"{value!r} is out of range (a finite number up to 2^40)", field=name)
            return float(value)
        raise SpecError(f"expects a number, got {value!r}", field=name)
    if hint is str:
        return str(value)
    return value


def _show(value: Any) -> str:
    """A value as it would be written in a spec string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    return str(value)


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in params.items())


def build(name: str, given: dict[str, Any]) -> Workload:
    """Run generator ``name`` with ``given`` parameters (already parsed) over its defaults."""
    info = _GENERATORS.get(name)
    if info is None:
        import difflib

        close = difflib.get_close_matches(name.lower(), sorted(_GENERATORS), n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise SpecError(f"unknown workload {name!r} ({hint}known: {', '.join(sorted(_GENERATORS))}; "
                        "or give a path to a .yaml/.json trace or an .onnx file)")
    for key in given:
        if key not in info.params:
            import difflib

            close = difflib.get_close_matches(key, list(info.params), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise SpecError(f"unknown parameter {key!r} for workload {name} "
                            f"({hint}valid: {_format_params(info.params)})", field=key)
    values = dict(info.params)
    for key, value in given.items():
        values[key] = _coerce(value, info.types.get(key, Any), key)
        limit = COUNT_LIMITS.get(key)
        if limit is not None and isinstance(values[key], int) and values[key] > limit:
            raise SpecError(f"{values[key]:,} is out of range (at most {limit:,})", field=key)
    if "precision" in values:
        check_precision(values["precision"])
    train = values.pop("train")
    wl = info.func(**values)
    changed = {k: v for k, v in values.items() if info.params[k] != v}
    if train:
        changed["train"] = True
    label = name + (":" + ",".join(f"{k}={_show(v)}" for k, v in changed.items()) if changed else "")
    wl = replace(wl, name=label, params={"generator": name, **values, "train": train, **wl.params})
    if train:
        from dse.workloads.training import training_workload
        wl = training_workload(wl)
    return wl

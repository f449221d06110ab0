"""The study YAML, as pydantic models: base architecture, workloads, parameter space,
derived parameters, objectives, constraints, sampler and budget.

These models check the shape of the file; ``dse.search.resolve`` checks what the
names mean (architecture fields, metrics, expressions) against the base design.

    name: quickstart                      # default: the file name
    architecture: tpu-v1-like             # bundled name, or a path relative to this file
    workloads:                            # a spec string, or {spec, weight, name, batch, precision}
      - {spec: "mlp:batch=200", weight: 3}
      - resnet50:batch=8
    parameters:                           # dotted architecture paths, components by name
      compute.mxu.rows: {low: 64, high: 512, step: 32}          # int range (ints given)
      compute.mxu.clock: {low: 500 MHz, high: 1.2 GHz, name: f} # float range, units allowed
      memories.ddr3.channels: {low: 1, high: 8}
      sram.unified_buffer.capacity: {low: 1 MiB, high: 64 MiB, log: true, name: ub}
      compute.mxu.dataflow: {choices: [weight_stationary, output_stationary]}
      memories.ddr3.technology: {choices: [ddr3-2133, ddr4-3200]}  # re-fills the tier's fields
    derived:                              # arithmetic over parameters (short names or paths)
      compute.mxu.cols: rows
      compute.mxu.area: 79.4 * rows * cols / 65536
    objectives: [maximize tops_per_w]     # or several; a bare metric takes its usual direction
    constraints: [avg_power_w <= 75 W, area_mm2 <= 400, fits_memory]
    sampler: tpe                          # auto | grid | random | tpe | nsga2 | gp
    seed: 0                               # default 0; null for a fresh random stream
    n_trials: 200                         # total, earlier runs included; and/or timeout: 10 min
    jobs: 1                               # worker processes sharing the storage
    best_designs: 5                       # architecture files written to <out>/best/
    screen: {candidates: 100000, simulate: 20}  # two-stage: estimate many, simulate the best
"""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import PrivateAttr, BaseModel, ConfigDict, Field, field_validator, model_validator

from dse.spec.yaml_io import at
from dse.units import DIMENSIONS, to_si

SAMPLERS = ("auto", "grid", "random", "tpe", "nsga2", "gp")
_SAMPLER_ALIASES = {"nsgaii": "nsga2", "nsga": "nsga2", "bayes": "gp", "gaussianprocess": "gp"}


def si_number(value: Any) -> int | float:
    """A plain number, or a unit string ("700 MHz", "24 MiB") as its SI float."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return _in_range(value)
    if isinstance(value, str):
        try:
            return _in_range(float(value))
        except ValueError as exc:
            if "out of range" in str(exc):
                raise
        except OverflowError:
            raise ValueError(f"{value[:40]!r} is out of range") from None
        last = ""
        for dim in DIMENSIONS:
            try:
                return to_si(value, dim)
            except ValueError as exc:
                last = str(exc)
        if "cannot read" in last:
            raise ValueError(f"cannot read {value!r} as a number or a quantity with units") from None
        raise ValueError(f"{value!r} has units dse does not know") from None
    raise ValueError(f"expected a number, got {value!r}")


#: Largest magnitude of a searched value (2^53: every integer below it is exact as a float).
MAX_VALUE = 2.0**53
#: Most values a stepped range may hold (a grid of more could never be run).
MAX_STEPS = 10**9


def _in_range(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if abs(value) > MAX_VALUE:
        raise ValueError(f"{value:.4g} is out of range (at most 2^53 in magnitude)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ParamSpec(_Strict):
    """One searched architecture field: a range (``low``/``high``, optional ``step``,
    ``log``) or a list of ``choices`` (categorical, or an explicit grid)."""

    name: str | None = None
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    type: Literal["int", "float"] | None = None
    choices: list[Any] | None = None
    #: the unit strings as written (low/high/step), checked against the field's dimension
    _written: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _shape(self) -> "ParamSpec":
        if self.name is not None and not self.name.isidentifier():
            raise ValueError(at("name", f"'{self.name}' is not a valid name (letters, digits, _)"))
        if self.choices is not None:
            extra = [k for k in ("low", "high", "step") if getattr(self, k) is not None]
            if extra or self.log:
                raise ValueError(at("choices", f"give either choices or a range, not both "
                                               f"(also has {', '.join(extra) or 'log'})"))
            if not self.choices:
                raise ValueError(at("choices", "empty list of choices"))
            if any(isinstance(c, (dict, list)) for c in self.choices):
                raise ValueError(at("choices", "choices must be numbers or strings"))
            for i, c in enumerate(self.choices):
                if isinstance(c, (int, float)) and not isinstance(c, bool):
                    try:
                        _in_range(c)
                    except ValueError as exc:
                        raise ValueError(at(f"choices[{i}]", str(exc))) from None
            return self
        if self.low is None or self.high is None:
            raise ValueError("give a range (low and high) or a list of choices")
        for key in ("low", "high", "step"):
            raw = getattr(self, key)
            if raw is None:
                continue
            if isinstance(raw, str):
                self._written[key] = raw
            try:
                setattr(self, key, si_number(raw))
            except ValueError as exc:
                raise ValueError(at(key, str(exc))) from None
        is_int = all(isinstance(v, int) for v in (self.low, self.high, self.step) if v is not None)
        if self.type is None:
            self.type = "int" if is_int else "float"
        if self.type == "int":
            for key in ("low", "high", "step"):
                v = getattr(self, key)
                if v is not None and float(v) != int(v):
                    raise ValueError(at(key, f"{v} is not an integer (type: int)"))
                if v is not None:
                    setattr(self, key, int(v))
        else:
            for key in ("low", "high", "step"):
                v = getattr(self, key)
                if v is not None:
                    setattr(self, key, float(v))
        if self.low > self.high:
            raise ValueError(at("low", f"empty range: low {self.low:g} is above high {self.high:g}"))
        if self.step is not None:
            if self.step <= 0:
                raise ValueError(at("step", f"step must be positive, got {self.step:g}"))
            if (self.high - self.low) / self.step > MAX_STEPS:
                raise ValueError(at("step", f"step {self.step:g} divides the range into more than "
                                            f"{MAX_STEPS:,} values; use a larger step or log: true"))
            if self.log:
                raise ValueError(at("step", "a log-scale range cannot have a step"))
        if self.log and self.low <= 0:
            raise ValueError(at("low", f"a log-scale range needs low > 0, got {self.low:g}"))
        return self


class WorkloadEntry(_Strict):
    """A workload spec (``gpt:layers=2,seq=128``) with its weight in the aggregate."""

    spec: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, le=1e12)
    name: str | None = None
    batch: int | None = Field(default=None, gt=0, le=2**31)
    precision: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.spec


class ObjectiveSpec(_Strict):
    metric: str
    direction: Literal["maximize", "minimize"] | None = None


class ScreenSpec(_Strict):
    """Two-stage study: ``candidates`` designs drawn from the space are estimated by the
    analytic screen (dse/search/screen.py, numpy, no simulation); the ``simulate`` most
    promising designs are then simulated as the study's trials, each on every workload of the
    study (``simulate`` x workloads simulate() calls)."""

    candidates: int = Field(default=100_000, gt=0, le=100_000_000)
    simulate: int = Field(default=20, gt=0)


class StudySpec(_Strict):
    """A whole study file."""

    name: str | None = None
    description: str = ""
    architecture: str = Field(min_length=1)
    workloads: list[WorkloadEntry] = Field(min_length=1)
    parameters: dict[str, ParamSpec] = Field(min_length=1)
    derived: dict[str, str | int | float] = {}
    objectives: list[ObjectiveSpec] = Field(default=[ObjectiveSpec(metric="tops_per_w", direction="maximize")],
                                            min_length=1)
    constraints: list[str] = []
    sampler: str = "auto"
    #: numpy's generators take seeds below 2^32; dse adds the trials done to it on a resume
    seed: int | None = Field(default=0, ge=0, lt=2**31)
    n_trials: int | None = Field(default=None, gt=0, le=10**9)
    timeout: float | None = None
    jobs: int = Field(default=1, gt=0, le=1024)
    best_designs: int = Field(default=5, ge=0, le=1000)
    screen: ScreenSpec | None = None

    @field_validator("workloads", mode="before")
    @classmethod
    def _workloads(cls, value: Any) -> Any:
        if isinstance(value, (str, dict)):
            value = [value]
        if isinstance(value, list):
            return [{"spec": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("objectives", mode="before")
    @classmethod
    def _objectives(cls, value: Any) -> Any:
        if isinstance(value, (str, dict)):
            value = [value]
        if not isinstance(value, list):
            return value
        out = []
        for v in value:
            if isinstance(v, str):
                words = v.split()
                if len(words) == 2 and words[0] in ("maximize", "minimize"):
                    v = {"metric": words[1], "direction": words[0]}
                else:
                    v = {"metric": v}
            out.append(v)
        return out

    @field_validator("constraints", mode="before")
    @classmethod
    def _constraints(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: str) -> str:
        key = value.lower().replace("-", "").replace("_", "")
        key = _SAMPLER_ALIASES.get(key, key)
        if key not in SAMPLERS:
            raise ValueError(f"unknown sampler '{value}' (known: {', '.join(SAMPLERS)})")
        return key

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        if value is None:
            return None
        seconds = to_si(value, "time")
        if seconds > 1e9:
            raise ValueError(f"timeout of {seconds:.3g} s is out of range (at most 1e9 s)")
        if seconds <= 0:
            raise ValueError(f"timeout must be positive, got {value!r}")
        return seconds

    @model_validator(mode="after")
    def _budget(self) -> "StudySpec":
        if self.n_trials is None and self.timeout is None and self.sampler != "grid" and self.screen is None:
            raise ValueError("give n_trials or timeout (only the grid sampler and a screen know when "
                             "they are done)")
        labels = [w.label for w in self.workloads]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(at("workloads", f"workload listed twice: {', '.join(dupes)} "
                                             f"(give each a distinct name:)"))
        return self

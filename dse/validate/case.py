"""Validation cases: what was measured, where it was published, and how dse reproduces it.

A case file holds ``cases:``, a list of cases, and optionally ``defaults:``, fields
shared by every case of the file (usually ``system`` and ``kind``). Every case has the
common fields of ``CaseBase``; its ``kind`` adds the fields that configure it (see
``dse/validate/kinds/``). Paths in a case (an architecture or workload file) are
relative to the case file.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dse.spec.yaml_io import at
from dse.units import DIMENSIONS, to_si


class CaseBase(BaseModel):
    """Fields every case has, whatever its kind."""

    model_config = ConfigDict(extra="forbid")

    #: metric name -> dimension of its unit strings (a key of dse.units.DIMENSIONS), or the
    #: unit label of a plain number ("samples/s", "B/MAC")
    METRICS: ClassVar[dict[str, str]] = {}

    name: str = Field(min_length=1)
    kind: str
    system: str = Field(min_length=1, description="the chip or memory system that was measured")
    source: str = Field(min_length=1, description="citation: authors, title, venue, year, table or figure")
    cite: str = Field(min_length=1, description="the citation in a few words, for tables")
    metric: str
    measured: float | str = Field(description="the published measurement, with its unit")
    notes: str = ""

    @field_validator("measured", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            raise ValueError(f"expected a measured value with its unit, got {v!r}")
        return v

    @model_validator(mode="after")
    def _measured_in_si(self) -> "CaseBase":
        if self.metric not in self.METRICS:
            raise ValueError(at("metric", f"'{self.metric}' is not a metric of kind '{self.kind}' "
                                          f"(one of {', '.join(sorted(self.METRICS))})"))
        dim = self.dimension
        try:
            value = to_si(self.measured, dim) if dim else float(self.measured)
        except (TypeError, ValueError) as exc:
            raise ValueError(at("measured", str(exc))) from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(at("measured", f"must be a positive, finite value, got {self.measured!r}"))
        object.__setattr__(self, "measured", value)
        return self

    @property
    def dimension(self) -> str | None:
        """The metric's dimension for unit strings, None for a plain number."""
        d = self.METRICS[self.metric]
        return d if d in DIMENSIONS else None

    @property
    def unit(self) -> str:
        """The SI unit of the metric's values (or the plain number's label)."""
        d = self.METRICS[self.metric]
        return DIMENSIONS[d][0] if d in DIMENSIONS else d

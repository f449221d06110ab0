"""The parameter space: Optuna suggestions per parameter, then derived parameters,
giving the overrides (dotted path -> value) applied to the base architecture."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna

from dse.errors import SpecError
from dse.search.expressions import Expression


@dataclass(frozen=True)
class Parameter:
    """A searched field: ``kind`` is int, float or categorical (``choices``)."""

    path: str
    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.path, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.path, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.path, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list:
        """Every value this parameter takes on a grid (a range needs a step, or int)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return list(range(self.low, self.high + 1, self.step or 1))
        if self.step is None:
            raise SpecError(f"parameter '{self.path}' is a continuous range: the grid sampler needs "
                            f"a step or a list of choices")
        n = int(math.floor((self.high - self.low) / self.step + 1e-9))
        return [self.low + i * self.step for i in range(n + 1)]

    @property
    def is_numeric(self) -> bool:
        return self.kind != "categorical" or all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in self.choices)


@dataclass(frozen=True)
class Derived:
    """A field computed from other parameters by a checked arithmetic expression."""

    path: str
    name: str
    expr: Expression


class Space:
    """Searched parameters and derived ones, in file order."""

    def __init__(self, parameters: list[Parameter], derived: list[Derived]):
        self.parameters = parameters
        self.derived = derived

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Searched values from the trial, keyed by path."""
        return {p.path: p.suggest(trial) for p in self.parameters}

    def derive(self, values: dict[str, Any]) -> dict[str, Any]:
        """Derived values (keyed by path) for searched values keyed by path."""
        scope: dict[str, Any] = {}
        for p in self.parameters:
            scope[p.path] = scope[p.name] = values[p.path]
        out: dict[str, Any] = {}
        for d in self.derived:
            try:
                v = d.expr.evaluate(scope)
            except (ArithmeticError, ValueError, TypeError) as exc:
                raise SpecError(f"derived parameter '{d.path}' = {d.expr.text}: {exc}") from None
            if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
                v = int(v) if _all_int(d, scope) else v
            elif isinstance(v, int) and abs(v) >= 2**53:
                v = float(v)  # beyond exact floats and int64 columns: stored as a float
            out[d.path] = v
            scope[d.path] = scope[d.name] = v
        return out

    def grid(self) -> dict[str, list]:
        return {p.path: p.grid() for p in self.parameters}

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.grid().values())

    def names(self) -> set[str]:
        """Every name an expression may use: paths and short names."""
        out = {p.path for p in self.parameters} | {p.name for p in self.parameters}
        return out | {d.path for d in self.derived} | {d.name for d in self.derived}


def _all_int(d: Derived, scope: dict[str, Any]) -> bool:
    # an expression over ints that lands on a whole number stays an int (e.g. rows / 2)
    return all(isinstance(scope.get(n), int) for n in d.expr.names)

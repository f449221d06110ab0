"""Optuna samplers by name.

``auto`` is TPE for one objective and NSGA-II for several (Optuna's AutoSampler
lives in optunahub, which downloads code at run time; dse does not do that).
``gp`` needs PyTorch.
"""
from __future__ import annotations

import importlib.util
import inspect
import warnings
from typing import TYPE_CHECKING

import optuna

from dse.errors import SpecError

if TYPE_CHECKING:
    from dse.search.resolve import Study


def sampler_name(st: "Study") -> str:
    """The sampler actually used for the study's ``sampler`` setting."""
    name = st.spec.sampler
    if name == "auto":
        return "tpe" if len(st.objectives) == 1 else "nsga2"
    return name


def nsga2_population(n_trials: int | None) -> int:
    """A quarter of the budget, between 8 and 50, so that a short study still evolves."""
    if n_trials is None:
        return 50
    return max(8, min(50, n_trials // 4))


def make_sampler(st: "Study", seed: int | None, n_trials: int | None) -> optuna.samplers.BaseSampler:
    name = sampler_name(st)
    # constraints reach the samplers through trial.set_constraint (see objective.py)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "grid":
            return optuna.samplers.GridSampler(st.space.grid(), seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "tpe":
            return TPESampler(seed=seed)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=nsga2_population(n_trials))
        if name == "gp":
            if importlib.util.find_spec("torch") is None:
                raise SpecError("sampler 'gp' needs PyTorch, which is not installed "
                                "(pip install torch), or choose tpe")
            return optuna.samplers.GPSampler(seed=seed, deterministic_objective=True)
    raise SpecError(f"unknown sampler '{name}'")


class TPESampler(optuna.samplers.TPESampler):
    """Optuna's TPE sampler, drawing the same points, with the internal representation of each
    finished trial's parameters kept instead of recomputed at every trial.

    TPE rebuilds its Parzen estimators from every trial's parameters at each trial; turning
    those parameters into arrays, trial by trial in Python, was about a quarter of its time in
    a 1,000-trial study. A finished trial's parameters never change, so each is converted
    once. (Where Optuna's method has another signature, its own is used unchanged.)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._reprs: dict[tuple[int, tuple], list[float] | None] = {}

    def _cached_internal_repr(self, trials, search_space, study):
        import numpy as np

        space = tuple((name, repr(d)) for name, d in search_space.items())
        items = list(search_space.items())
        rows = []
        for trial in trials:
            key = (trial._trial_id, space)
            row = self._reprs.get(key) if trial.state.is_finished() else None
            if row is None:
                params = self._get_params(trial, study)
                row = ([d.to_internal_repr(params[name]) for name, d in items]
                       if search_space.keys() <= params.keys() else [])
                if trial.state.is_finished():
                    self._reprs[key] = row
            if row:
                rows.append(row)
        return {name: np.asarray([r[i] for r in rows]) for i, (name, _) in enumerate(items)}


if list(inspect.signature(optuna.samplers.TPESampler.__dict__.get("_get_internal_repr", lambda: None)).parameters) \
        == ["self", "trials", "search_space", "study"] and hasattr(optuna.samplers.TPESampler, "_get_params"):
    TPESampler._get_internal_repr = TPESampler._cached_internal_repr

"""Optuna samplers by name.

``auto`` is TPE for one objective and NSGA-II for several (Optuna's AutoSampler
lives in optunahub, which downloads code at run time; dse does not do that).
``gp`` needs PyTorch.
"""
from __future__ import annotations

import importlib.util
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
            return _QueuedGrid(st.space.grid(), seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "tpe":
            # each process's sampler holds only finished trials (dse.search.runner): there are no
            # running trials of other processes to lie about, and the lie costs time
            from dse.search.tpe import CachedTPESampler  # Optuna's TPE, each finished trial read once

            return CachedTPESampler(seed=seed, constant_liar=False)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=nsga2_population(n_trials))
        if name == "gp":
            if importlib.util.find_spec("torch") is None:
                raise SpecError("sampler 'gp' needs PyTorch, which is not installed "
                                "(pip install torch), or choose tpe")
            return optuna.samplers.GPSampler(seed=seed, deterministic_objective=True)
    raise SpecError(f"unknown sampler '{name}'")


class _QueuedGrid(optuna.samplers.GridSampler):
    """Optuna's grid sampler for a grid whose points dse queues itself (dse.search.study: every
    point a waiting trial with its values fixed, run once by whichever process takes it). Such
    trials never get a grid id, so the grid's own bookkeeping after a trial (which stops the
    study once its points are visited, and looks up the grid id of the last one: a KeyError on a
    grid of one point) has nothing to do: the budget ends the study."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


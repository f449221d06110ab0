"""dse's TPE sampler keeps each finished trial's parameter arrays instead of recomputing them:
it must draw exactly the points Optuna's own TPESampler draws, failures and constraints included."""
from __future__ import annotations

import random

import optuna

from dse.search.samplers import TPESampler


def _draws(sampler, n: int = 60) -> list[dict]:
    study = optuna.create_study(sampler=sampler)
    rng = random.Random(1)
    out = []
    for i in range(n):
        trial = study.ask()
        params = {"rows": trial.suggest_int("rows", 64, 512, step=32),
                  "clock": trial.suggest_float("clock", 5e8, 1.2e9),
                  "ub": trial.suggest_float("ub", 1.0, 64.0, log=True),
                  "flow": trial.suggest_categorical("flow", ["ws", "os", "is"])}
        out.append(params)
        if i % 9 == 4:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        trial.storage.set_trial_system_attr(trial._trial_id, "constraints", [rng.uniform(-1, 0.3)])
        study.tell(trial, rng.random())
    return out


def test_the_cached_sampler_draws_what_optunas_draws():
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    reference = _draws(optuna.samplers.TPESampler(seed=5))
    assert _draws(TPESampler(seed=5)) == reference
    assert _draws(TPESampler(seed=6)) != reference  # (the comparison can fail)

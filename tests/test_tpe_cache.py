"""dse.search.tpe.CachedTPESampler keeps what Optuna's TPE sampler recomputes from every finished
trial. The reference is Optuna's own TPESampler: with the same seed, both must make exactly the
same suggestions, trial after trial, over a history with every kind of trial the split sees
(feasible, infeasible, tied values, NaN constraints, pruned with and without intermediate values,
failed) on a space of every distribution kind."""
from __future__ import annotations

import optuna
import pytest

from dse.search import tpe
from dse.search.tpe import CachedTPESampler

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _objective(n_objectives: int, power_cap: float = 30.0):
    def objective(trial: optuna.Trial):
        rows = trial.suggest_int("rows", 64, 512, step=32)
        count = trial.suggest_int("count", 1, 4)
        ub = trial.suggest_int("ub", 1, 64, log=True)
        clock = trial.suggest_float("clock", 5e8, 1.2e9)
        volt = trial.suggest_float("volt", 0.6, 1.1, step=0.05)
        leak = trial.suggest_float("leak", 1e-3, 1.0, log=True)
        flow = trial.suggest_categorical("flow", ["ws", "os", "is"])
        lanes = trial.suggest_categorical("lanes", [64, 128, 256])
        power = rows * count * clock * volt**2 / 1e9 / 40 + leak * 10
        area = rows * count / 4 + lanes / 8
        # an infeasible design, a NaN constraint (counted as feasible) and the memory check
        trial.storage.set_trial_system_attr(
            trial._trial_id, "constraints",
            [power - power_cap, area - 400.0, float("nan") if ub == 7 else ub - 48.0])
        if ub == 5:
            raise ValueError("not a design")  # a FAIL: in no estimator
        if leak > 0.3:
            if n_objectives == 1:  # (Optuna takes intermediate values of one objective only)
                trial.report(power, 0)  # pruned with an intermediate value ...
            raise optuna.TrialPruned()
        if lanes == 64 and volt > 1.0:
            raise optuna.TrialPruned()  # ... and without
        # coarse values, so that designs tie and the split's order among equals matters
        tops = round(rows * count * clock / 2e11 * (1.2 if flow == "ws" else 1.0))
        if n_objectives == 1:
            return tops  # the most throughput within the power: the best designs lie on the bound
        return tops, round(power)
    return objective


def _suggestions(sampler, directions, n_trials: int, power_cap: float) -> list[dict]:
    study = optuna.create_study(directions=directions, sampler=sampler)
    study.optimize(_objective(len(directions), power_cap), n_trials=n_trials, catch=(ValueError,))
    states = {t.state for t in study.trials}
    assert {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL} <= states  # the history holds every kind
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert any(c > 0 for t in complete for c in t.system_attrs["constraints"])  # infeasible ones
    assert len({tuple(t.values) for t in complete}) < len(complete)  # and ties
    return [t.params for t in study.trials]


@pytest.mark.parametrize("directions,kwargs,n_trials,seeds,power_cap", [
    (["maximize"], {}, 300, (0, 11), 30.0),         # dse's setting: multivariate, one objective
    (["maximize"], {}, 100, (0,), 0.5),             # few feasible: infeasible trials ranked too
    (["minimize"], {"n_startup_trials": 5}, 100, (0,), 30.0),
    (["maximize"], {"multivariate": False}, 80, (0,), 30.0),  # one parameter at a time
    (["maximize", "minimize"], {}, 80, (0,), 30.0),           # the multi-objective split is Optuna's own
])
def test_same_suggestions_as_optunas_tpe(directions, kwargs, n_trials, seeds, power_cap):
    for seed in seeds:
        stock = _suggestions(optuna.samplers.TPESampler(seed=seed, constant_liar=False, **kwargs),
                             directions, n_trials, power_cap)
        cached = CachedTPESampler(seed=seed, constant_liar=False, **kwargs)
        assert cached.fast == tpe.FAST
        mine = _suggestions(cached, directions, n_trials, power_cap)
        for number, (a, b) in enumerate(zip(stock, mine)):
            assert a == b, f"seed {seed}, trial {number}: Optuna suggests {a}, the cached sampler {b}"


def test_forgets_what_it_kept_when_moved_to_another_study():
    """One sampler on two studies in turn: each study's suggestions are those of a stock sampler
    with the same random state there (the kept rows are by trial id, which studies share)."""
    stock, cached = (optuna.samplers.TPESampler(seed=3, constant_liar=False),
                     CachedTPESampler(seed=3, constant_liar=False))
    got = {}
    for name, sampler in (("stock", stock), ("cached", cached)):
        a = optuna.create_study(direction="maximize", sampler=sampler)
        a.optimize(_objective(1), n_trials=40, catch=(ValueError,))
        b = optuna.create_study(direction="maximize", sampler=sampler)
        b.optimize(_objective(1), n_trials=40, catch=(ValueError,))
        a.optimize(_objective(1), n_trials=10, catch=(ValueError,))
        got[name] = [t.params for s in (a, b) for t in s.trials]
    assert got["stock"] == got["cached"]


def test_fast_path_in_use_on_the_optuna_it_was_read_from():
    """With Optuna 5.0 the cached path runs (else a change in Optuna's TPE source turned it off:
    re-read TPESampler._sample and the split helpers, and update _READ_FROM)."""
    if not optuna.__version__.startswith("5.0."):
        pytest.skip(f"Optuna {optuna.__version__}: dse uses Optuna's TPE sampler unchanged")
    assert tpe.FAST and CachedTPESampler(seed=0, constant_liar=False).fast
    assert not CachedTPESampler(seed=0, constant_liar=True).fast  # running trials: Optuna's path

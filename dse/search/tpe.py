"""Optuna's TPE sampler with what it recomputes from every finished trial on every call kept
from one call to the next.

On each trial, Optuna's ``TPESampler`` (5.0) walks the whole history three times in Python:
it scores each trial's constraints to split good from bad, and converts each trial's parameters
to their internal form once for each of its two density estimators. At 1,000 trials that is
about a third of the sampler's time and grows with the history. A finished trial never
changes, so ``CachedTPESampler`` keeps each one's split class (feasible value, infeasibility
score) and its row of internal values, keyed by trial id, and turns a call into index
lookups; the estimators, the random draws and the acquisition are Optuna's own, so for the
same seed and history the suggestions are Optuna's (tests/test_tpe_cache.py compares them).

It uses private parts of Optuna (``TPESampler._sample``, ``_get_internal_repr`` and the
module's split helpers). What it replaces is checked against the source it was written from
(``_READ_FROM``): with any other Optuna, or a study whose trials may be running (constant
liar), it is Optuna's sampler unchanged.
"""
from __future__ import annotations

import hashlib
import inspect
import operator
from typing import Any

import numpy as np
import optuna
from optuna.samplers._tpe import sampler as _tpe
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

#: SHA-256 of the source of what this module replaces, as read in Optuna 5.0.0.
_READ_FROM = "1d4fab5667bd570b4d8c25c0b8168ffc072748bb2ab8ad71dfd078b4cf6e255d"
_REPLACED = ("TPESampler._sample", "TPESampler._get_internal_repr", "TPESampler._get_params",
             "_split_trials", "_split_complete_trials", "_split_complete_trials_single_objective",
             "_get_infeasible_trial_score", "_split_infeasible_trials")


def _source_digest() -> str | None:
    """The digest of the installed Optuna's source for ``_REPLACED`` (None if unreadable)."""
    h = hashlib.sha256()
    try:
        for name in _REPLACED:
            obj: Any = _tpe
            for part in name.split("."):
                obj = getattr(obj, part)
            h.update(inspect.getsource(obj).encode())
    except (AttributeError, OSError, TypeError):
        return None
    return h.hexdigest()


#: Whether the installed Optuna is the one this module was written against.
FAST = _source_digest() == _READ_FROM

_COMPLETE, _PRUNED, _INFEASIBLE = 0, 1, 2
_NUMBER = operator.attrgetter("number")


class CachedTPESampler(optuna.samplers.TPESampler):
    """``optuna.samplers.TPESampler`` (same arguments, same suggestions) that reads each
    finished trial once."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._storage = self._study_id = None
        #: trial id -> (class, infeasibility score, first value) of a finished trial
        self._kinds: dict[int, tuple[int, float, float | None]] = {}
        #: search space -> its rows of internal values (see ``_Rows``)
        self._rows: dict[tuple, _Rows] = {}

    @property
    def fast(self) -> bool:
        """Whether finished trials are read once (else this is Optuna's sampler unchanged)."""
        return FAST and not self._constant_liar

    def _bind(self, study: optuna.Study) -> None:
        """Forget what was kept if the sampler is now used on another study."""
        if study._storage is not self._storage or study._study_id != self._study_id:
            self._storage, self._study_id = study._storage, study._study_id
            self._kinds.clear()
            self._rows.clear()

    # ---- replaced from Optuna's TPESampler (see _READ_FROM) ---------------------------
    def _sample(self, study: optuna.Study, trial: FrozenTrial, search_space: dict) -> dict[str, Any]:
        if not self.fast:
            return super()._sample(study, trial, search_space)
        self._bind(study)
        trials = study._get_trials(deepcopy=False, states=[TrialState.COMPLETE, TrialState.PRUNED],
                                   use_cache=True)
        if self._gamma is None:
            self._gamma = _tpe.default_gamma if len(study.directions) <= 1 else _tpe.default_gamma_multiobjective
        below, above = self._split(study, trials, self._gamma(len(trials)))
        mpe_below = self._build_parzen_estimator(study, search_space, below, handle_below=True)
        mpe_above = self._build_parzen_estimator(study, search_space, above, handle_below=False)
        samples_below = mpe_below.sample(self._rng.rng, self._n_ei_candidates)
        acq = self._compute_acquisition_func(samples_below, mpe_below, mpe_above)
        ret = _tpe.TPESampler._compare(samples_below, acq)
        for name, dist in search_space.items():
            ret[name] = dist.to_external_repr(ret[name])
        return ret

    def _kind(self, t: FrozenTrial) -> tuple[int, float, float | None]:
        kind = self._kinds.get(t._trial_id)
        if kind is None:
            score = _tpe._get_infeasible_trial_score(t)
            if score > 0:
                kind = (_INFEASIBLE, score, None)
            elif t.state == TrialState.COMPLETE:
                kind = (_COMPLETE, score, t.value if len(t.values) == 1 else None)
            else:
                kind = (_PRUNED, score, None)
            self._kinds[t._trial_id] = kind
        return kind

    def _split(self, study: optuna.Study, trials: list[FrozenTrial], n_below: int):
        """Optuna's ``_split_trials`` for finished trials, their classes and scores kept."""
        complete: list[FrozenTrial] = []
        pruned: list[FrozenTrial] = []
        infeasible: list[FrozenTrial] = []
        kinds = self._kinds
        buckets = (complete.append, pruned.append, infeasible.append)
        for t in trials:
            buckets[(kinds.get(t._trial_id) or self._kind(t))[0]](t)
        n = min(n_below, len(complete))
        if len(study.directions) <= 1:  # sorted by the value, as _split_complete_trials_single_objective
            values = [kinds[t._trial_id][2] for t in complete]
            order = sorted(range(len(complete)), key=values.__getitem__,  # stable, as sorting the trials
                           reverse=study.direction != StudyDirection.MINIMIZE)
            below_c, above_c = [complete[i] for i in order[:n]], [complete[i] for i in order[n:]]
        else:
            below_c, above_c = _tpe._split_complete_trials(complete, study, n_below)
        n_below = max(0, n_below - len(below_c))
        below_p, above_p = _tpe._split_pruned_trials(pruned, study, n_below)
        n_below = max(0, n_below - len(below_p))
        n = min(n_below, len(infeasible))
        ranked = sorted(infeasible, key=lambda t: kinds[t._trial_id][1])
        below = below_c + below_p + ranked[:n]
        above = above_c + above_p + ranked[n:]
        below.sort(key=_NUMBER)
        above.sort(key=_NUMBER)
        return below, above

    def _get_internal_repr(self, trials: list[FrozenTrial], search_space: dict,
                           study: optuna.Study) -> dict[str, np.ndarray]:
        if not self.fast or not search_space:
            return super()._get_internal_repr(trials, search_space, study)
        key = tuple(search_space.items())
        rows = self._rows.get(key)
        if rows is None:
            rows = self._rows[key] = _Rows(search_space)
        return rows.columns(trials)


class _Rows:
    """Each finished trial's parameters in their internal form (one float row per trial, or
    none where the trial lacks one of the space's parameters), in the order first seen."""

    def __init__(self, search_space: dict):
        self.space = search_space
        self.names = list(search_space)
        self.categorical = [isinstance(d, optuna.distributions.CategoricalDistribution)
                            for d in search_space.values()]
        self.index: dict[int, int] = {}  # trial id -> row (-1: not in this space)
        self.data = np.empty((64, len(self.names)))
        self.n = 0

    def _add(self, t: FrozenTrial) -> int:
        params = t.params  # a finished trial's own (Optuna's _get_params)
        if not self.space.keys() <= params.keys():
            self.index[t._trial_id] = -1
            return -1
        if self.n == len(self.data):
            self.data = np.concatenate([self.data, np.empty_like(self.data)])
        self.data[self.n] = [d.to_internal_repr(params[k]) for k, d in self.space.items()]
        self.index[t._trial_id] = self.n
        self.n += 1
        return self.n - 1

    def columns(self, trials: list[FrozenTrial]) -> dict[str, np.ndarray]:
        index = self.index
        rows = [index[t._trial_id] if t._trial_id in index else self._add(t) for t in trials]
        rows = [r for r in rows if r >= 0]
        if not rows:
            return {k: np.asarray([]) for k in self.names}
        block = self.data[rows]
        # a categorical's internal value is its choice's index, an int, as Optuna gives it
        return {k: block[:, j].astype(np.int64) if cat else block[:, j]
                for j, (k, cat) in enumerate(zip(self.names, self.categorical))}

"""A trial's start and its finish, each written to an Optuna storage in one transaction.

Through Optuna's own API a trial costs some twenty round trips to an RDB storage (the new
row, each parameter with a check of its distribution against the study's, each attribute,
the values, the state), which on SQLite cost more CPU than the trial's simulation. Here the
sampler works in memory (see ``dse.search.runner``) and the storage is written twice per
trial, in Optuna's own schema (its SQLAlchemy table definitions, so the rows are the ones
Optuna writes and reads back): the RUNNING row with its parameters and first heartbeat when
the trial starts, and the values, attributes and final state when it ends. A trial that
another process has meanwhile failed (a stale heartbeat) is left as it is.

Waiting trials (retries of trials whose process died, designs queued by a grid or a screen)
are taken by one conditional update, so that each runs once. Anything else (an in-memory
storage, an Optuna whose tables look different) goes through Optuna's public storage API:
slower, and the same.
"""
from __future__ import annotations

import datetime
import json
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.trial import TrialState

from dse.search.objective import ERROR_ATTR

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def counted(t: optuna.trial.FrozenTrial) -> bool:
    """A trial that used up budget: finished, and not a FAIL left by an interruption."""
    if t.state not in _FINISHED:
        return False
    return t.state != TrialState.FAIL or ERROR_ATTR in t.user_attrs


def _rdb(storage):
    """The RDBStorage under Optuna's cache wrapper, or None."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def _tables():
    """Optuna's table definitions, or None where this Optuna's schema is not the one known here."""
    try:
        from optuna.storages._rdb import models
    except ImportError:
        return None
    need = {"TrialModel": {"trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"},
            "TrialParamModel": {"trial_id", "param_name", "param_value", "distribution_json"},
            "TrialValueModel": {"trial_id", "objective", "value", "value_type"},
            "TrialUserAttributeModel": {"trial_id", "key", "value_json"},
            "TrialSystemAttributeModel": {"trial_id", "key", "value_json"},
            "TrialHeartbeatModel": {"trial_id", "heartbeat"},
            "StudyModel": {"study_id"}}
    for name, cols in need.items():
        model = getattr(models, name, None)
        if model is None or not cols <= set(model.__table__.columns.keys()):
            return None
    if not hasattr(models.TrialValueModel, "value_to_stored_repr"):
        return None
    return models


def _now_stored(models) -> datetime.datetime:
    """A timestamp as Optuna stores it: naive UTC from Optuna 5 on, naive local time before."""
    if hasattr(models.TrialModel, "_datetime_start_utc"):
        return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return datetime.datetime.now()


class Record:
    """Writes the trials of one study in ``storage`` (the study's ``_storage``)."""

    def __init__(self, storage, study_id: int):
        self.storage = storage
        self.study_id = study_id
        self.rdb = _rdb(storage)
        self.models = _tables() if self.rdb is not None else None
        self.fast = self.models is not None
        self._tally = None  # the counting query, built once
        #: at the last tally: trials spending budget (counted or running), waiting, rows
        self._last: tuple[int, int, int] | None = None
        if self.fast:
            self._prepare()

    def _prepare(self) -> None:
        """The statements of a trial's start and end, built once (each costs as much to build
        as to run)."""
        import sqlalchemy as sa

        m = self.models
        t = m.TrialModel.__table__
        self._new_trial = sa.insert(t).values(study_id=sa.bindparam("sid"), number=None,
                                              state=sa.bindparam("st"), datetime_start=sa.bindparam("ds"))
        self._count_before = sa.select(sa.func.count(t.c.trial_id)).where(
            t.c.study_id == sa.bindparam("sid"), t.c.trial_id < sa.bindparam("tid"))
        self._set_number = sa.update(t).where(t.c.trial_id == sa.bindparam("tid")).values(number=sa.bindparam("num"))
        self._end = sa.update(t).where(t.c.trial_id == sa.bindparam("tid"), t.c.state == TrialState.RUNNING).values(
            state=sa.bindparam("st"), datetime_complete=sa.bindparam("dc"))
        self._insert = {name: sa.insert(getattr(m, name).__table__) for name in (
            "TrialParamModel", "TrialValueModel", "TrialUserAttributeModel", "TrialSystemAttributeModel",
            "TrialHeartbeatModel")}

    # ---- a trial's start ----------------------------------------------------------------
    def start(self, params: dict[str, Any], distributions: dict[str, BaseDistribution],
              budget: int | None = None) -> tuple[int, int] | None:
        """A RUNNING trial with these parameters (and, on an RDB storage, its first heartbeat):
        its trial id and number. With a ``budget``, None and nothing written where the trials
        that spend it (counted or running, in any process) already reach it: two processes
        that both counted one trial left start one between them, not two."""
        if not self.fast:  # (an in-memory storage: no other process to race)
            template = optuna.trial.FrozenTrial(
                number=0, trial_id=0, state=TrialState.RUNNING, value=None, values=None,
                datetime_start=datetime.datetime.now(), datetime_complete=None, params=params,
                distributions=distributions, user_attrs={}, system_attrs={}, intermediate_values={})
            trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
            return trial_id, self.storage.get_trial(trial_id).number
        m = self.models
        try:
            with self.rdb.engine.begin() as conn:
                self._lock_study(conn)
                # the row first: on SQLite its insert takes the write lock, so what is counted
                # below is every other process's last word (PostgreSQL: the study's row lock)
                trial_id = conn.execute(self._new_trial, {"sid": self.study_id, "st": TrialState.RUNNING,
                                                          "ds": _now_stored(m)}).inserted_primary_key[0]
                number = self._number(conn, trial_id)
                if budget is not None and self._reaches(conn, number, budget):
                    raise _Spent  # (rolls the row back)
                self._insert_params(conn, trial_id, params, distributions)
                conn.execute(self._insert["TrialHeartbeatModel"], {"trial_id": trial_id})
        except _Spent:
            return None
        return trial_id, number

    def _reaches(self, conn, number: int, budget: int) -> bool:
        """Whether the trials before the new trial ``number`` (the study's other rows) that
        spend budget (counted, or running) reach ``budget``. The rows there at this process's
        last tally can only have gained their waiting ones since (a finished trial never
        changes), and every row added since is before this one; while that bound stays below
        the budget, nothing more is counted."""
        if self._last is not None:
            spent, waiting, rows = self._last
            if spent + waiting + (number - rows) < budget:
                return False
        done, running, _waiting, _rows = conn.execute(self._tally_statement(), {"study_id": self.study_id}).one()
        return int(done) + int(running) - 1 >= budget  # (less this trial's own RUNNING row)

    def enqueue(self, designs: list[dict[str, Any]]) -> None:
        """WAITING trials with these fixed parameter values (as ``Study.enqueue_trial`` makes
        them), in one transaction: each is run once, by whichever process takes it first."""
        if not designs:
            return
        if not self.fast:
            for params in designs:
                self.storage.create_new_trial(self.study_id, template_trial=optuna.trial.create_trial(
                    state=TrialState.WAITING, system_attrs={"fixed_params": params}))
            return
        import sqlalchemy as sa

        m = self.models
        trials = m.TrialModel.__table__
        with self.rdb.engine.begin() as conn:
            self._lock_study(conn)
            for params in designs:
                trial_id = conn.execute(sa.insert(trials).values(
                    study_id=self.study_id, number=None, state=TrialState.WAITING)).inserted_primary_key[0]
                self._number(conn, trial_id)
                conn.execute(sa.insert(m.TrialSystemAttributeModel.__table__).values(
                    trial_id=trial_id, key="fixed_params", value_json=json.dumps(params)))

    def waiting(self) -> list[int]:
        """Trial ids of (the first 64) WAITING trials, oldest first."""
        if not self.fast:
            trials = self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.WAITING,))
            return [t._trial_id for t in trials]
        import sqlalchemy as sa

        trials = self.models.TrialModel.__table__
        with self.rdb.engine.connect() as conn:
            return list(conn.execute(sa.select(trials.c.trial_id).where(
                trials.c.study_id == self.study_id, trials.c.state == TrialState.WAITING)
                .order_by(trials.c.trial_id).limit(64)).scalars())

    def claim(self, trial_id: int) -> tuple[int, dict[str, Any], set[str]] | None:
        """Take a WAITING trial (a retry, or a queued design): its number, the parameter values
        it fixes, and the names of those it already holds as parameters; None if another
        process took it first."""
        if not self.fast:
            if not self.storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return None
            t = self.storage.get_trial(trial_id)
            return t.number, {**t.system_attrs.get("fixed_params", {}), **t.params}, set(t.params)
        import sqlalchemy as sa

        m = self.models
        trials = m.TrialModel.__table__
        with self.rdb.engine.begin() as conn:
            taken = conn.execute(sa.update(trials).where(
                trials.c.trial_id == trial_id, trials.c.state == TrialState.WAITING).values(
                state=TrialState.RUNNING, datetime_start=_now_stored(m))).rowcount
            if taken != 1:
                return None
            number = conn.execute(sa.select(trials.c.number).where(trials.c.trial_id == trial_id)).scalar_one()
            attrs = m.TrialSystemAttributeModel.__table__
            fixed = conn.execute(sa.select(attrs.c.value_json).where(
                attrs.c.trial_id == trial_id, attrs.c.key == "fixed_params")).scalar_one_or_none()
            tp = m.TrialParamModel.__table__
            held = {name: json_to_distribution(dist).to_external_repr(value) for name, value, dist in conn.execute(
                sa.select(tp.c.param_name, tp.c.param_value, tp.c.distribution_json).where(tp.c.trial_id == trial_id))}
            beats = m.TrialHeartbeatModel.__table__
            conn.execute(sa.delete(beats).where(beats.c.trial_id == trial_id))
            conn.execute(sa.insert(beats).values(trial_id=trial_id))
        return number, {**(json.loads(fixed) if fixed else {}), **held}, set(held)

    def _lock_study(self, conn) -> None:
        """Trial numbers are counted under a lock on the study's row, as Optuna does (SQLite
        has one writer at a time and no row locks)."""
        if conn.dialect.name != "sqlite":
            import sqlalchemy as sa

            studies = self.models.StudyModel.__table__
            conn.execute(sa.select(studies.c.study_id).where(studies.c.study_id == self.study_id).with_for_update())

    def _number(self, conn, trial_id: int) -> int:
        """A new trial's number: the study's trials before it (Optuna's count_past_trials)."""
        number = conn.execute(self._count_before, {"sid": self.study_id, "tid": trial_id}).scalar_one()
        conn.execute(self._set_number, {"tid": trial_id, "num": number})
        return number

    def _insert_params(self, conn, trial_id: int, params: dict[str, Any],
                       distributions: dict[str, BaseDistribution]) -> None:
        rows = [{"trial_id": trial_id, "param_name": k, "distribution_json": distribution_to_json(d),
                 "param_value": d.to_internal_repr(params[k])} for k, d in distributions.items() if k in params]
        if rows:
            conn.execute(self._insert["TrialParamModel"], rows)

    # ---- a trial's end ------------------------------------------------------------------
    def finish(self, trial_id: int, values: list[float] | None, user_attrs: dict[str, Any],
               system_attrs: dict[str, Any], params: dict[str, Any] | None = None,
               distributions: dict[str, BaseDistribution] | None = None) -> bool:
        """COMPLETE with ``values`` (FAIL when None), with these attributes and, for a claimed
        trial, the ``params`` it does not hold yet. False, and nothing written, where the trial
        is no longer RUNNING: another process found it stale and failed it."""
        state = TrialState.FAIL if values is None else TrialState.COMPLETE
        if not self.fast:
            return self._finish_slowly(trial_id, state, values, user_attrs, system_attrs, params, distributions)
        m = self.models
        with self.rdb.engine.begin() as conn:
            done = conn.execute(self._end, {"tid": trial_id, "st": state, "dc": _now_stored(m)}).rowcount
            if done != 1:
                return False  # (nothing else was written in this transaction)
            if params:
                self._insert_params(conn, trial_id, params, distributions or {})
            if values is not None:
                rows = []
                for objective, v in enumerate(values):
                    stored, kind = m.TrialValueModel.value_to_stored_repr(v)
                    rows.append({"trial_id": trial_id, "objective": objective, "value": stored, "value_type": kind})
                conn.execute(self._insert["TrialValueModel"], rows)
            for name, attrs in (("TrialUserAttributeModel", user_attrs), ("TrialSystemAttributeModel", system_attrs)):
                if attrs:
                    if params is not None:  # a claimed trial may carry attributes of the trial it retries
                        import sqlalchemy as sa

                        table = getattr(m, name).__table__
                        conn.execute(sa.delete(table).where(table.c.trial_id == trial_id,
                                                            table.c.key.in_(list(attrs))))
                    conn.execute(self._insert[name], [
                        {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()])
        return True

    def _finish_slowly(self, trial_id, state, values, user_attrs, system_attrs, params, distributions) -> bool:
        s = self.storage
        try:
            if s.get_trial(trial_id).state != TrialState.RUNNING:
                return False
            for k, v in (params or {}).items():
                d = distributions[k]
                s.set_trial_param(trial_id, k, d.to_internal_repr(v), d)
            for k, v in user_attrs.items():
                s.set_trial_user_attr(trial_id, k, v)
            for k, v in system_attrs.items():
                s.set_trial_system_attr(trial_id, k, v)
            return s.set_trial_state_values(trial_id, state=state, values=values)
        except optuna.exceptions.UpdateFinishedTrialError:
            return False

    # ---- what the storage holds ---------------------------------------------------------
    def tally(self) -> tuple[int, int, int, int]:
        """(counted finished trials, running, waiting, all rows) in one query. A FAIL counts
        only with an error (an interrupted trial spent no budget)."""
        if not self.fast:
            trials = self.storage.get_all_trials(self.study_id, deepcopy=False)
            return (sum(counted(t) for t in trials), sum(t.state == TrialState.RUNNING for t in trials),
                    sum(t.state == TrialState.WAITING for t in trials), len(trials))
        with self.rdb.engine.connect() as conn:
            row = conn.execute(self._tally_statement(), {"study_id": self.study_id}).one()
        done, running, waiting, rows = int(row[0]), int(row[1]), int(row[2]), int(row[3])
        self._last = (done + running, waiting, rows)
        return done, running, waiting, rows

    def _tally_statement(self):
        """(counted finished, running, waiting, rows) of the study: one query."""
        if self._tally is None:
            import sqlalchemy as sa

            m = self.models
            t = m.TrialModel.__table__
            a = m.TrialUserAttributeModel.__table__
            errored = sa.exists().where(a.c.trial_id == t.c.trial_id, a.c.key == ERROR_ATTR)
            done = sa.case((t.c.state.in_([TrialState.COMPLETE, TrialState.PRUNED]), 1),
                           (sa.and_(t.c.state == TrialState.FAIL, errored), 1), else_=0)

            def n(state):
                return sa.func.coalesce(sa.func.sum(sa.case((t.c.state == state, 1), else_=0)), 0)

            self._tally = sa.select(sa.func.coalesce(sa.func.sum(done), 0), n(TrialState.RUNNING),
                                    n(TrialState.WAITING), sa.func.count()).where(
                t.c.study_id == sa.bindparam("study_id"))
        return self._tally


class _Spent(Exception):
    """A trial's start found the budget spent (its transaction is rolled back)."""

"""One process's share of a study: the sampler asks and is told in memory, and each trial is
recorded in the shared storage twice (its start, its end; see ``dse.search.record``).

* **What the sampler sees.** A local in-memory study holds this process's trials and copies
  of the finished trials of earlier runs and of other processes (pulled from the storage at
  most every ``PULL_S``, and only when the storage holds rows this process did not write).
  With one process the sampler sees exactly its own history, so a seed gives the same study.
* **Budget.** Before each trial, one query counts the trials that spend budget (finished and
  counted, or running, in any process): every process sharing the storage stops at the budget.
  A new trial's start counts again in its own transaction (``Record.start``), so two processes
  that both counted one trial left start one, not two.
* **Dead processes.** While a trial runs, a thread records its heartbeat; every
  ``GRACE_S`` / 2 the loop fails (and queues a retry of) the running trials of processes
  whose heartbeat went silent. Waiting trials (retries, queued grid points or screened designs) are
  taken before new ones are asked for.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from dse.search import storage as _storage
from dse.search.objective import CONSTRAINTS_SYSTEM_ATTR, Evaluator
from dse.search.record import Record, counted
from dse.search.samplers import make_sampler

#: Seconds between two pulls of other processes' finished trials into the local sampler.
PULL_S = 2.0


def _copy(t: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    """A finished trial as the local study holds it: what a sampler reads (not the results)."""
    return optuna.trial.FrozenTrial(
        number=0, trial_id=0, state=t.state, value=None,
        values=t.values if t.state == TrialState.COMPLETE else None,
        datetime_start=t.datetime_start, datetime_complete=t.datetime_complete, params=t.params,
        distributions=t.distributions, user_attrs={}, system_attrs=dict(t.system_attrs),
        intermediate_values=t.intermediate_values)


class Runner:
    """Trials of ``shared`` (an Optuna study on the shared storage) run in this process."""

    def __init__(self, st, shared: optuna.Study, sampler: optuna.samplers.BaseSampler, target: int | None,
                 after: Callable[["Runner"], None] | None = None):
        self.st = st
        self.shared = shared
        self.target = target
        self.after = after
        self.record = Record(shared._storage, shared._study_id)
        with _quiet():
            self.local = optuna.create_study(directions=st.directions, sampler=sampler)
        self.evaluator = Evaluator(st)
        self.mine: set[int] = set()      # trial ids this process recorded
        self.seen: set[int] = set()      # finished trial ids already copied (or this process's)
        #: finished trials known here: number -> (state, counted, first value, feasible)
        self.known: dict[int, tuple[TrialState, bool, float | None, bool]] = {}
        self.done = 0                    # counted finished trials in the storage, at the last count
        self.rows = 0                    # rows in the storage this process knows of
        self.current: int | None = None  # the trial whose heartbeat is recorded
        #: the space's distributions, as Optuna made them for the first trial (the same suggest
        #: calls make the same ones every trial; Trial.distributions deep-copies them each time)
        self._distributions: dict[str, Any] | None = None
        self._last_pull = self._last_stale = time.monotonic()
        self.pull()

    # ---- what other processes did ---------------------------------------------------------
    def pull(self) -> list[optuna.trial.FrozenTrial]:
        """The storage's trials; finished ones of other processes (or earlier runs) are copied
        into the local study, once each."""
        trials = self.shared.get_trials(deepcopy=False)
        for t in trials:
            if t._trial_id in self.seen or not t.state.is_finished():
                continue
            self.seen.add(t._trial_id)
            self._know(t.number, t.state, counted(t), t.values, t.user_attrs)
            self.evaluator.remember(t)
            self.local.add_trial(_copy(t))
        self.rows = len(trials)
        self.done = sum(counted(t) for t in trials)
        self._last_pull = time.monotonic()
        return trials

    def _know(self, number: int, state: TrialState, is_counted: bool, values, user_attrs: dict) -> None:
        first = values[0] if values and state == TrialState.COMPLETE else None
        cons = (user_attrs.get("result") or {}).get("constraints", [])
        feasible = first is not None and not any(c > 0 for c in cons if c == c)
        self.known[number] = (state, is_counted, first, feasible)

    # ---- the loop -------------------------------------------------------------------------
    def run(self, n_trials: int | None = None, deadline: float | None = None) -> int:
        """Run trials until the budget is spent (or ``n_trials`` ran here, or ``deadline``
        passed on ``time.monotonic``); the number run here."""
        beat = _Heartbeat(self) if _storage.has_heartbeat(self.shared._storage) else None
        ran = 0
        try:
            while n_trials is None or ran < n_trials:
                if deadline is not None and time.monotonic() >= deadline:
                    break
                done, running, waiting, rows = self.record.tally()
                self.done = done
                now = time.monotonic()
                # (between two of its trials, whatever runs is another process's)
                if beat is not None and running and now - self._last_stale >= _storage.GRACE_S / 2:
                    _storage.fail_stale(self.shared)
                    self._last_stale = now
                    done, running, waiting, rows = self.record.tally()
                if rows != self.rows and now - self._last_pull >= PULL_S:
                    self.pull()
                if self.target is not None and done + running >= self.target:
                    break
                if not self._one(self._claim() if waiting else None):
                    break  # another process started the budget's last trial first
                ran += 1
        finally:
            if beat is not None:
                beat.stop()
        return ran

    def _claim(self) -> tuple[int, int, dict[str, Any], set[str]] | None:
        for trial_id in self.record.waiting():
            taken = self.record.claim(trial_id)
            if taken is not None:
                return (trial_id, *taken)
        return None

    def _one(self, claimed: tuple[int, int, dict[str, Any], set[str]] | None) -> bool:
        """One trial; False (and nothing run) where the budget was spent meanwhile."""
        if claimed is not None:  # a queued design (or a retry): the local sampler suggests its values
            self.local.enqueue_trial(claimed[2], skip_if_exists=False)
        trial = self.local.ask()
        params = self.st.space.suggest(trial)
        if self._distributions is None or self._distributions.keys() != params.keys():
            self._distributions = trial.distributions
        distributions = self._distributions
        missing = None
        if claimed is None:
            started = self.record.start(params, distributions, budget=self.target)
            if started is None:
                with _quiet():
                    self.local.tell(trial, state=TrialState.FAIL)
                return False
            trial_id, number = started
            self.rows += 1
        else:
            trial_id, number, _, held = claimed
            missing = {k: v for k, v in params.items() if k not in held}
        self.mine.add(trial_id)
        self.seen.add(trial_id)
        self.current = trial_id
        try:
            outcome = self.evaluator.evaluate(params, number)
        except BaseException:  # interrupted (Ctrl-C) or a bug: FAIL without an error spends no budget
            self.current = None
            self.record.finish(trial_id, None, {}, {}, missing, distributions)
            self.local.tell(trial, state=TrialState.FAIL)
            raise
        self.current = None
        system: dict[str, Any] = {}
        if outcome.constraints is not None:
            system[CONSTRAINTS_SYSTEM_ATTR] = outcome.constraints
            self.local._storage.set_trial_system_attr(trial._trial_id, CONSTRAINTS_SYSTEM_ATTR, outcome.constraints)
        recorded = self.record.finish(trial_id, outcome.values, outcome.user_attrs, system, missing, distributions)
        with _quiet():
            if recorded and outcome.values is not None:
                self.local.tell(trial, outcome.values)
            else:  # a failed design, or one failed meanwhile by another process (which queued a retry)
                self.local.tell(trial, state=TrialState.FAIL)
        if recorded:
            self._know(number, TrialState.COMPLETE if outcome.values is not None else TrialState.FAIL, True,
                       outcome.values, outcome.user_attrs)
            self.done += 1
        if self.after is not None:
            self.after(self)
        return True


def work(st, url: str, seed: int | None, target: int | None, timeout: float | None,
         verbosity: int, parent: int) -> None:
    """A worker process of a sweep: the same study, its own sampler, the shared storage and
    budget; ``st`` is the resolved study. (It lives here, not with run_study, so that a
    worker imports no table code.)"""
    _die_with_parent(parent)
    optuna.logging.set_verbosity(verbosity)  # the parent's setting, not a new one
    lock = _storage.hold_shared(url)  # noqa: F841 - held until this process ends
    storage = None
    try:
        storage = _storage.open_storage(url, checked=True)
        study = optuna.load_study(study_name=st.name, storage=storage)
        Runner(st, study, make_sampler(st, seed, target), target).run(
            deadline=None if timeout is None else time.monotonic() + timeout)
    except KeyboardInterrupt:
        pass  # the parent writes the tables; completed trials are in the storage
    except Exception as exc:  # noqa: BLE001 - a process entry point: one line, no secret
        import sys

        sys.stderr.write(f"error: sweep worker: {_storage.scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, url)}\n")
        sys.exit(1)
    _leave(storage)


def _leave(storage) -> None:
    """End a worker whose trials are all recorded, without the interpreter's teardown.

    The parent writes the final tables once every worker has ended, so a worker's exit is on
    the sweep's critical path; tearing down an interpreter holding Optuna, SQLAlchemy and
    numpy takes ~0.2 s of that (measured on 2 cores), and nothing in it is needed: every
    trial is committed, the heartbeat thread has stopped, and the file lock goes with the
    process. The storage's connections are closed first, so SQLite sees a clean close."""
    import os
    import sys

    engine = getattr(getattr(storage, "_backend", storage), "engine", None)
    if engine is not None:
        engine.dispose()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(0)


def _die_with_parent(parent: int) -> None:
    """End this worker process when the sweep that started it ends, however it ends."""
    import os
    import signal
    import threading

    try:  # Linux: the kernel sends SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG = 1)
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the request took hold
        os._exit(1)

    def watch() -> None:  # elsewhere (and as a second guard): poll the parent
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="dse-parent-watch", daemon=True).start()


class _Heartbeat:
    """A thread recording the heartbeat of the runner's current trial every interval."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self.rdb = runner.record.rdb
        self.interval = self.rdb.get_heartbeat_interval() or _storage.HEARTBEAT_S
        self.event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="dse-heartbeat", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.event.wait(self.interval):
            trial_id = self.runner.current
            if trial_id is not None:
                try:
                    self.rdb.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - a missed beat is retried at the next interval
                    pass

    def stop(self) -> None:
        self.event.set()
        self.thread.join()


class _quiet:
    """Optuna's INFO lines (a study created, a trial finished) held back for the local study."""

    def __enter__(self):
        self.level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(max(self.level, optuna.logging.WARNING))
        return self

    def __exit__(self, *exc):
        optuna.logging.set_verbosity(self.level)
        return False

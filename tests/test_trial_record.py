"""dse.search.record writes a trial's start and end in one transaction each, in Optuna's own
tables. What Optuna reads back must be what Optuna's public API writes for the same trial:
the reference is the same record kept through Optuna's own storage calls (an in-memory storage)."""
from __future__ import annotations

import datetime
import math
import os
import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from dse.search.record import Record
from dse.search.storage import open_storage

DISTS = {"rows": IntDistribution(64, 512, step=32), "clock": FloatDistribution(5e8, 1.2e9, log=True),
         "flow": CategoricalDistribution(["ws", "os", "is"])}
RESULT = {"metrics": {"r1": {"latency_s": 1.5e-3, "bound": "mxu", "margin": -float("inf")}},
          "derived": {"cols": 128}, "constraints": [float("nan"), -2.0]}


def _record(storage) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name="rec", directions=["maximize", "minimize"])
    rec = Record(study._storage, study._study_id)
    # a completed trial (an infinite value too), a failed one, one that another process failed
    # meanwhile, and a queued design taken and run
    tid, number = rec.start({"rows": 128, "clock": 7e8, "flow": "os"}, DISTS)
    assert number == 0 and rec.tally() == (0, 1, 0, 1)
    assert rec.finish(tid, [2.5, math.inf], {"result": RESULT}, {"constraints": [0.0, -2.0]})
    tid, _ = rec.start({"rows": 64, "clock": 5e8, "flow": "ws"}, DISTS)
    assert rec.finish(tid, None, {"error": "invalid design: rows"}, {})
    tid, _ = rec.start({"rows": 96, "clock": 6e8, "flow": "is"}, DISTS)
    study._storage.set_trial_state_values(tid, TrialState.FAIL)  # found stale by another process
    assert not rec.finish(tid, [1.0, 1.0], {"result": RESULT}, {"constraints": [0.0]})
    rec.enqueue([{"rows": 192, "clock": 9e8, "flow": "ws"}])
    assert rec.tally() == (2, 0, 1, 4)  # counted: the completed and the failed-with-an-error
    (waiting,) = rec.waiting()
    number, fixed, held = rec.claim(waiting)
    assert rec.claim(waiting) is None  # taken once
    assert (number, fixed, held) == (3, {"rows": 192, "clock": 9e8, "flow": "ws"}, set())
    assert rec.finish(waiting, [0.5, 3.0], {"result": RESULT}, {"constraints": [-1.0, 0.0]}, fixed, DISTS)
    return study


def _fields(t: optuna.trial.FrozenTrial) -> tuple:
    system = {k: v for k, v in t.system_attrs.items()}
    return (t.number, t.state, t.values, t.params, t.distributions, _json_safe(t.user_attrs), system)


def _json_safe(d):
    """NaN compared as a string (NaN != NaN)."""
    if isinstance(d, dict):
        return {k: _json_safe(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_json_safe(v) for v in d]
    return "nan" if isinstance(d, float) and math.isnan(d) else d


@pytest.fixture
def far_timezone():
    """A local time far from UTC, so that a timestamp stored in the wrong convention shows."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kathmandu"  # UTC+5:45
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_trials_written_in_one_transaction_read_back_as_optuna_writes_them(tmp_path, far_timezone):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    before = datetime.datetime.now()
    fast = _record(open_storage(f"sqlite:///{tmp_path / 'study.db'}"))
    assert Record(fast._storage, fast._study_id).fast
    reference = _record(None)  # Optuna's own calls, in memory
    assert not Record(reference._storage, reference._study_id).fast
    # read back by a fresh Optuna, not from the writer's cache
    again = optuna.load_study(study_name="rec", storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    assert [_fields(t) for t in again] == [_fields(t) for t in reference.trials]
    after = datetime.datetime.now()
    for t in again:
        assert before - datetime.timedelta(seconds=1) <= t.datetime_start <= after
        if t.state.is_finished() and t.number != 2:
            assert t.datetime_start <= t.datetime_complete <= after


def test_two_processes_that_count_the_last_trial_left_start_one(tmp_path):
    """A budget of 3: two writers (as two sweep processes) each count 2 trials spent, then both
    start one. The first start takes the budget's last trial; the second finds it spent and
    writes nothing, so the storage ends with exactly 3 trials and not 4. A waiting trial (a
    retry) claimed meanwhile by a third writer spends budget too."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=open_storage(url), study_name="budget", direction="maximize")
    a = Record(study._storage, study._study_id)
    b = Record(open_storage(url), study._study_id)  # its own engine, as another process has
    params = {"rows": 128, "clock": 7e8, "flow": "os"}
    for _ in range(2):
        tid, _ = a.start(params, DISTS)
        assert a.finish(tid, [1.0], {"result": RESULT}, {})
    assert a.tally()[:2] == b.tally()[:2] == (2, 0)
    assert a.start(params, DISTS, budget=3) is not None   # the third
    assert b.start(params, DISTS, budget=3) is None       # not a fourth: nothing written
    assert a.tally() == (2, 1, 0, 3)
    assert b.start(params, DISTS, budget=4) is not None   # below a larger budget it starts

    c = optuna.create_study(storage=open_storage(url), study_name="retry", direction="maximize")
    a, b = Record(c._storage, c._study_id), Record(open_storage(url), c._study_id)
    a.enqueue([params])
    assert a.tally() == b.tally() == (0, 0, 1, 1)
    (waiting,) = b.waiting()
    assert b.claim(waiting) is not None                   # spends the budget's one trial
    assert a.start(params, DISTS, budget=1) is None
    assert a.start(params, DISTS, budget=2) is not None

"""Optuna storages for sweeps: opening them with heartbeats, keeping their passwords out
of every output, and finding the trials that processes which died left RUNNING.

* **Heartbeats.** On an RDB storage (SQLite, PostgreSQL, MySQL) every running trial
  records a heartbeat each ``HEARTBEAT_S``; a trial silent for ``GRACE_S`` belonged to a
  process that died. Optuna marks it FAIL and ``RetryFailedTrialCallback`` enqueues it
  once more with the same parameters.
* **Dead processes on SQLite.** Every sweep holds a shared ``flock`` on ``<db>.lock``
  while it runs (the kernel drops it when the process dies, however it dies). A sweep
  that can take the lock exclusively is the only one alive on that file, so every
  RUNNING trial there is a leftover: it is failed (and retried) at once, without
  waiting for its heartbeat to go stale.
* **Secrets.** :func:`masked` is the URL for display (password as ``***``);
  :func:`without_password` is the URL that is written down (``study.json``). On a
  resume, the password comes from ``DSE_STORAGE_PASSWORD`` or, for PostgreSQL, from
  libpq's own ``PGPASSWORD`` or ``~/.pgpass`` (``PGPASSFILE``).
"""
from __future__ import annotations

import contextlib
import os
import time
import warnings
from pathlib import Path
from typing import Any

from dse.errors import SpecError

#: Seconds between two heartbeats of a running trial (one small write each).
HEARTBEAT_S = 2
#: Seconds of silence after which a running trial's process is taken for dead.
GRACE_S = 10
#: Environment variable that supplies a storage password left out of a URL.
PASSWORD_ENV = "DSE_STORAGE_PASSWORD"


def _url(url: str):
    from sqlalchemy.engine import make_url

    try:
        return make_url(url)
    except Exception:  # noqa: BLE001 - sqlalchemy raises several kinds for a malformed URL
        return None


def masked(url: str | None) -> str | None:
    """``url`` with its password shown as ``***`` (for every printed or logged line)."""
    if url is None:
        return None
    u = _url(url)
    if u is None:
        return _scrub_userinfo(url)
    return u.render_as_string(hide_password=True)


def without_password(url: str | None) -> str | None:
    """``url`` with no password at all (what ``study.json`` keeps)."""
    if url is None:
        return None
    u = _url(url)
    if u is None:
        return _scrub_userinfo(url)
    return u._replace(password=None).render_as_string(hide_password=False)  # set(password=None) keeps it


def _scrub_userinfo(url: str) -> str:
    """A URL sqlalchemy cannot parse: drop whatever sits between '://' and '@'."""
    head, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        userinfo, _, host = rest.partition("@")
        return f"{head}://{userinfo.split(':', 1)[0]}:***@{host}"
    return url


def password_of(url: str | None) -> str | None:
    u = _url(url) if url else None
    return None if u is None or not u.password else str(u.password)


def scrub(text: str, url: str | None) -> str:
    """``text`` (an error message) with the URL's password replaced by ``***``."""
    secret = password_of(url)
    if secret:
        from urllib.parse import quote

        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, "***")
    return text


def with_password(url: str) -> str:
    """``url``, given the password from ``DSE_STORAGE_PASSWORD`` when it names a user but no
    password (libpq finds PGPASSWORD and ~/.pgpass on its own)."""
    secret = os.environ.get(PASSWORD_ENV)
    u = _url(url)
    if secret and u is not None and u.username and not u.password:
        return u.set(password=secret).render_as_string(hide_password=False)
    return url


def storage_url_for(out_dir: Path | None) -> str | None:
    """The embedded default: an SQLite file next to the tables."""
    return f"sqlite:///{(out_dir / 'study.db').resolve()}" if out_dir is not None else None


def sqlite_path(url: str | None) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url and url.startswith("sqlite:///") else None


def open_storage(url: str | None, checked: bool = False):
    """An Optuna storage for ``url`` (None: in memory), with heartbeats and one retry of a
    trial whose process died. SQLite waits for locks held by other workers.

    Optuna checks that a storage's schema is its own version's (reading its ~30 Alembic
    migration scripts, ~0.1 s): not again for a worker whose sweep has just opened the same
    storage (``checked``), nor for an SQLite file this call creates (Optuna stamps it new)."""
    if url is None:
        return None
    import optuna
    from optuna import storages

    retry = getattr(storages, "RetryHeartbeatStaleTrialCallback", None) or storages.RetryFailedTrialCallback

    with warnings.catch_warnings():  # heartbeats and the retry callback are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Optuna 5 renamed ``failed_trial_callback`` to ``heartbeat_stale_trial_callback``
        import inspect

        name = ("heartbeat_stale_trial_callback"
                if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
                else "failed_trial_callback")
        beats: dict[str, Any] = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S,
                                 name: retry(max_retry=1), "skip_compatibility_check": checked}
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                beats["skip_compatibility_check"] = True
            try:
                with _schema_versions_unread(checked):
                    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}},
                                                         **beats)
                with storage.engine.connect() as conn:  # WAL: readers never block the writer
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                _commit_without_fsync(storage)
            except Exception as exc:  # noqa: BLE001
                raise SpecError(f"cannot open storage '{masked(url)}': "
                                f"{scrub(str(exc).splitlines()[0], url)}") from None
            return storage
        full = with_password(url)
        last: Exception | None = None
        for attempt in range(5):
            try:
                with _schema_versions_unread(checked):
                    return optuna.storages.RDBStorage(full, **beats)
            except Exception as exc:  # noqa: BLE001 - sqlalchemy raises many kinds for a bad URL
                last = exc
                # two machines starting on a fresh database race to create Optuna's schema;
                # the loser sees a duplicate object and simply opens what the winner made
                if "already exists" not in str(exc) and "UniqueViolation" not in str(exc):
                    break
                time.sleep(0.5 * (attempt + 1))
    message = scrub(scrub(str(last).splitlines()[0] if str(last) else type(last).__name__, full), url)
    raise SpecError(f"cannot open storage '{masked(url)}': {message}") from None


@contextlib.contextmanager
def _schema_versions_unread(checked: bool):
    """Within it, Optuna's ``RDBStorage`` does not read the storage's schema versions, when
    ``checked`` (a sweep's worker, opening a storage its parent has just opened and checked).

    Even told to skip the compatibility check, ``RDBStorage`` makes a ``_VersionManager``,
    which imports Alembic (with Mako and Pygments) and reads the version tables: ~0.13 s of a
    worker's start-up, during which it runs no trial (measured: 0.133-0.140 s against
    0.007 s). A worker never upgrades or checks the schema (what the version manager is
    for), so it gets one that reads them only if asked. Where this Optuna has no
    ``_VersionManager`` (private), or not ``checked``, nothing changes.
    """
    if not checked:
        yield
        return
    try:
        from optuna.storages._rdb import storage as rdb
    except ImportError:
        rdb = None
    real = getattr(rdb, "_VersionManager", None)
    if real is None:
        yield
        return

    class _Unread(real):  # its methods (upgrade, versions) still work, reading on demand
        def __init__(self, url, engine, scoped_session) -> None:
            self.url, self.engine, self.scoped_session = url, engine, scoped_session

    rdb._VersionManager = _Unread
    try:
        yield
    finally:
        rdb._VersionManager = real


def _commit_without_fsync(storage) -> None:
    """``synchronous=NORMAL`` on every SQLite connection of ``storage``.

    With SQLite's default FULL, each of a trial's commits (each parameter, constraint,
    heartbeat, its result and state) waits for the disk: 5 ms each on a virtual disk, more
    than the simulation. In WAL mode NORMAL syncs at checkpoints only: a commit survives a
    crash of the process, and a power cut can lose the last trials but never corrupts the
    file (https://sqlite.org/pragma.html#pragma_synchronous).
    """
    from sqlalchemy import event

    def pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened while Optuna made its tables get it too


class StorageLock:
    """A shared flock on ``<db>.lock`` next to an SQLite storage, held while a sweep runs.

    ``alone`` is True when this process could take it exclusively first: no other live
    process uses the file, so its RUNNING trials are leftovers of dead ones.
    """

    def __init__(self, url: str | None):
        self.fd: int | None = None
        self.alone = False
        path = sqlite_path(url)
        if path is None:
            return
        try:
            import fcntl
        except ImportError:  # not POSIX: heartbeats alone find dead trials
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.alone = True
        except OSError:
            self.alone = False
        if not self.alone:
            fcntl.flock(self.fd, fcntl.LOCK_SH)

    def share(self) -> None:
        """Let workers (and other sweeps) in: downgrade to a shared lock."""
        if self.fd is not None and self.alone:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_SH)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def hold_shared(url: str | None) -> int | None:
    """A worker's shared lock on an SQLite storage (released when the process ends)."""
    path = sqlite_path(url)
    if path is None:
        return None
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _fail(study, trial_ids) -> int:
    """Fail these RUNNING trials and retry each once, as Optuna does for a stale heartbeat."""
    import copy

    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    getter = getattr(storage, "get_heartbeat_stale_trial_callback", None) or \
        getattr(storage, "get_failed_trial_callback", lambda: None)
    callback = getter()
    n = 0
    for trial_id in trial_ids:
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        n += 1
        if callback is not None:
            callback(study, copy.deepcopy(storage.get_trial(trial_id)))
    return n


def fail_running(study) -> int:
    """Fail (and retry) every RUNNING trial: their processes are known to be dead."""
    from optuna.trial import TrialState

    return _fail(study, [t._trial_id for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))])


def fail_stale(study) -> None:
    """Fail (and retry) the running trials whose heartbeat has gone silent, and those that
    never sent one (their process died before its first beat) within GRACE_S of starting."""
    import datetime

    import optuna
    from optuna.trial import TrialState

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    backend = getattr(study._storage, "_backend", study._storage)
    engine = getattr(backend, "engine", None)
    if engine is None:
        return
    with engine.connect() as conn:
        beating = {row[0] for row in conn.exec_driver_sql("SELECT trial_id FROM trial_heartbeats")}
    now = datetime.datetime.now()
    silent = [t._trial_id for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
              if t._trial_id not in beating and t.datetime_start is not None
              and (now - t.datetime_start).total_seconds() > GRACE_S]
    _fail(study, silent)


def has_heartbeat(storage) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return storage is not None and is_heartbeat_enabled(storage)

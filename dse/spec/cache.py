"""An on-disk cache of validated architectures, for the command line's `dse run`.

Loading a design reads its YAML, the technology tables and the unit strings and validates
them with pydantic: ~40 ms of CPU, most of a `dse run` once the engine is fast. A design
loaded before comes back from a pickle instead, keyed on

* the SHA-256 of the file's bytes (an edit is a new key), and
* the size and modification time of every dse module that was imported when it was
  validated, of the technology data files, and of Pint's unit definitions, plus the
  Python and pydantic versions (a changed dse or library misses, and the entry is rebuilt).

Only a clean load is kept: a file that raised a warning (an implausible value) is validated
every time, so the warning is always shown. The files live in ``<cache dir>/architectures``
(see :func:`dse.diskcache.cache_dir`), are written atomically with owner-only permissions and are
read only when the current user owns them; a missing, unreadable, unwritable, corrupt or
foreign cache is simply not used (see dse.diskcache).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from dse.diskcache import cache_dir, read_own, stamp, write_atomic
from dse.errors import SpecError

if TYPE_CHECKING:
    from dse.spec.architecture import Architecture

#: bump when the layout of an entry changes
FORMAT = 1
#: entries kept (one per distinct file content, ~3 KB each); the oldest go first
MAX_ENTRIES = 64

_DSE = Path(__file__).resolve().parents[1]


def _folder() -> Path:
    return cache_dir() / "architectures"


def _versions() -> tuple[str, str]:
    from pydantic import VERSION

    return sys.version, VERSION


def _dependencies() -> list[tuple[str, int, int]]:
    """Files whose change could change a validated architecture (see the module docstring)."""
    import importlib.util

    files = {str(Path(m.__file__).resolve()) for name, m in list(sys.modules.items())
             if (name == "dse" or name.startswith("dse.")) and getattr(m, "__file__", None)}
    files.update(str(p) for p in (_DSE / "tech" / "data").iterdir() if p.is_file())
    spec = importlib.util.find_spec("pint")
    if spec is not None and spec.origin:
        files.add(str(Path(spec.origin).parent / "default_en.txt"))
    return sorted(stamp(f) for f in files if os.path.exists(f))


def _architecture_file(path_or_name: str | Path) -> Path | None:
    """The file ``dse run`` would load as a chip, or None where it might be a system file
    (a bundled system of that name is looked up first, as :func:`is_system_file` does)."""
    from dse.spec.loader import resolve

    try:
        path = resolve(path_or_name, "architectures")
    except SpecError:
        return None
    try:
        if resolve(path_or_name, "systems") != path:
            return None
    except SpecError:
        pass
    return path


def _key(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def cached_architecture(path_or_name: str | Path) -> "Architecture | None":
    """The architecture validated before from a file with these very bytes, or None."""
    path = _architecture_file(path_or_name)
    key = _key(path) if path is not None else None
    if key is None:
        return None
    raw = read_own(_folder() / f"{key}.pickle")
    if raw is None:
        return None
    try:
        header, body = pickle.loads(raw)
        if header != (FORMAT, _versions()) or any(stamp(f) != (f, size, mtime) for f, size, mtime in body[0]):
            return None
        return pickle.loads(body[1])
    except Exception:  # absent, unreadable, corrupt, stale: load the file instead
        return None


def load_architecture_cached(path_or_name: str | Path) -> "Architecture":
    """:func:`dse.spec.loader.load_architecture`, kept in the cache when it loads cleanly."""
    import warnings

    from dse.spec.loader import load_architecture

    with warnings.catch_warnings(record=True) as caught:
        arch = load_architecture(path_or_name)
    for w in caught:  # shown as they would have been, and the file is not cached
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    path = _architecture_file(path_or_name)
    key = _key(path) if path is not None else None
    if not caught and key is not None:
        _store(key, arch)
    return arch


def _store(key: str, arch: "Architecture") -> None:
    folder = _folder()
    try:
        body = (_dependencies(), pickle.dumps(arch, protocol=pickle.HIGHEST_PROTOCOL))
        data = pickle.dumps(((FORMAT, _versions()), body), protocol=pickle.HIGHEST_PROTOCOL)
        if write_atomic(folder / f"{key}.pickle", data):
            entries = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime_ns)
            for old in entries[:-MAX_ENTRIES]:
                old.unlink(missing_ok=True)
    except Exception:  # pickling refused, an entry removed meanwhile: do without the cache
        pass

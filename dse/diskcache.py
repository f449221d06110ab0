"""The user's cache folder and the small files dse keeps in it to start fast.

Everything here is an optimisation: a folder that is missing, unreadable or unwritable, a
file that is corrupt, stale or owned by another user is ignored and the answer is computed
again. Files are replaced atomically and created readable by their owner only.
"""
from __future__ import annotations

import marshal
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """``$DSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/dse``, else ``~/.cache/dse`` (it may not
    exist, or not be writable)."""
    root = os.environ.get("DSE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "dse")
    return Path(root)


def read_own(path: Path) -> bytes | None:
    """The bytes of a cache file this user owns, or None."""
    try:
        if hasattr(os, "getuid") and path.stat().st_uid != os.getuid():
            return None
        return path.read_bytes()
    except OSError:
        return None


def write_atomic(path: Path, data: bytes) -> bool:
    """Replace ``path`` with ``data`` in one step (mode 0600); False where that cannot be done."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return True
    except OSError:
        return False


def stamp(path: str | Path) -> tuple[str, int, int]:
    """(path, size, modification time in ns): what a cached answer about a file is keyed on."""
    st = os.stat(path)
    return str(path), st.st_size, st.st_mtime_ns


def bundled_yaml(path: Any) -> Any:
    """The data of a YAML file shipped with dse (a technology table), parsed once per change
    of the file: later processes read it back with :mod:`marshal`, which keeps every type a
    YAML mapping can hold here (str, int, float, bool, None, lists, dicts with any such
    keys) and loads in a fraction of a millisecond instead of ~5 ms of parsing and ~7 ms of
    importing PyYAML. ``path`` may be any importlib.resources file (one inside a zip is
    parsed every time)."""
    if not isinstance(path, Path):
        return _parse_yaml(path.read_text(encoding="utf-8"))
    key = (*stamp(path), sys.version)
    entry = cache_dir() / "tables" / f"{path.parent.name}.{path.name}.marshal"
    raw = read_own(entry)
    if raw is not None:
        try:
            cached_key, data = marshal.loads(raw)
            if tuple(cached_key) == key:
                return data
        except (EOFError, ValueError, TypeError):
            pass
    data = _parse_yaml(path.read_text(encoding="utf-8"))
    try:
        write_atomic(entry, marshal.dumps((key, data)))
    except ValueError:  # a type marshal cannot hold (a date): parse it every time
        pass
    return data


def _parse_yaml(text: str) -> Any:
    import yaml

    # libyaml's C loader where PyYAML has it: the pure-Python one takes ~45 ms on memories.yaml
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))

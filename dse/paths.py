"""Paths named by input files and command lines: a name the operating system refuses (longer
than NAME_MAX or PATH_MAX, or holding a NUL) is simply not a file, never an OSError
traceback (pathlib's own checks only swallow "no such file")."""
from __future__ import annotations

from pathlib import Path


def is_file(path: str | Path) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def exists(path: str | Path) -> bool:
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False

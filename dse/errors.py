"""Errors that the CLI turns into one clear line and exit status 2."""
from __future__ import annotations

import re

#: A run of this many non-blank characters in a message (a value echoed from the input:
#: 3,000 minus signs, a 5,000-digit number) is shortened, so the line stays readable.
LONG_TOKEN = 120
_LONG = re.compile(r"\S{%d,}" % LONG_TOKEN)


class DseError(Exception):
    """A user-facing error: bad input, an impossible design, a missing file.

    ``where`` names the file (and line where known); ``field`` is the dotted path
    of the offending field. ``str()`` gives the one line the CLI prints.
    """

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.field = field

    def __str__(self) -> str:
        parts = []
        if self.where:
            parts.append(self.where)
        if self.field:
            parts.append(shorten(self.field))
        parts.append(shorten(self.message))
        return printable(": ".join(parts))


class SpecError(DseError):
    """An architecture, workload or study file that does not validate."""


class DesignError(DseError):
    """A valid file describing a design that cannot run a workload (too-small SRAM...)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, Slurm, ``docker stop``, ``kill``), which the CLI handles as it does
    Ctrl-C: work in progress stops, what is complete is kept and written; exit status 143."""


class SpecWarning(UserWarning):
    """A valid input with a value outside its plausible range (dse/spec/plausible.py)."""


def printable(text: str) -> str:
    """``text`` with control characters (ANSI escapes, NUL, ...) shown as escapes, so that
    names from an input file never drive the terminal; newlines become spaces (one line)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\n":
            out.append(" ")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ascii(ch)[1:-1])
    return "".join(out)


def shorten(text: str) -> str:
    """``text`` with each very long run of non-blank characters cut to its start and length."""
    if len(text) < LONG_TOKEN:
        return text
    def cut(m: re.Match) -> str:
        token = m[0]
        body = token.rstrip("'\":,;.)]")  # the closing quote and colon stay
        return f"{body[:40]}... ({len(body):,} characters){token[len(body):]}"

    return _LONG.sub(cut, text)

"""Memory-access traces in the Ramulator / DRAMSim text style, parsed into a DataFrame.

Accepted lines (whitespace-separated, one access per line)::

    <time> <address> <op> [<size>]     e.g.  1024 0x7f3a0040 R 64
    <address> <op> [<size>]            e.g.  0x7f3a0040 W

``time`` is a non-negative number (cycles or any time unit, integer or decimal);
``address`` is hexadecimal with or without ``0x``, at most 64 bits; ``op`` is
R, W, RD, WR, READ or WRITE (any case); ``size`` is a positive integer number of
bytes (default ``default_size``, 64), at most ``MAX_SIZE`` (1 TiB); a time is at most
``MAX_TIME`` (2**53, the largest integer a float64 holds exactly). ``#`` starts a comment; blank lines are
ignored (a file with no access line at all is an error). A file uses one layout
throughout (decided by its first access line);
without times, ``time`` is the access's ordinal (0, 1, 2, ...).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from dse.errors import SpecError

#: Largest access accepted: 1 TiB, more than any one memory tier dse models holds, and
#: small enough that a million such accesses sum exactly in a float64 (2**40 x 2**20 = 2**60).
MAX_SIZE = 2**40
#: Largest time accepted: integers up to 2**53 are exact in a float64 (and fit an int64);
#: beyond, times could not be ordered or subtracted exactly.
MAX_TIME = 2**53

_OPS = {"R": False, "RD": False, "READ": False, "W": True, "WR": True, "WRITE": True}

# ASCII -> hex digit value; 255 marks a character that is not a hex digit.
_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate("0123456789abcdef"):
    _HEX[ord(_c)] = _i
    _HEX[ord(_c.upper())] = _i


def _data_line_number(lines: list[str], row: int) -> int:
    """1-based file line of the ``row``-th access line (comments and blanks skipped)."""
    seen = -1
    for no, line in enumerate(lines, start=1):
        if line.split("#", 1)[0].strip():
            seen += 1
            if seen == row:
                return no
    return len(lines)


def _hex_to_uint64(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised hex-string -> uint64 conversion; also returns a mask of invalid entries."""
    raw = values.astype("S")  # fixed-width ASCII bytes, NUL-padded
    width = raw.dtype.itemsize
    chars = raw.view(np.uint8).reshape(len(raw), width)
    length = (chars != 0).sum(axis=1)
    start = np.zeros(len(raw), dtype=np.int64)
    if width > 1:
        start[(chars[:, 0] == ord("0")) & ((chars[:, 1] | 0x20) == ord("x"))] = 2
    digits = _HEX[chars]
    bad = (length - start <= 0) | (length - start > 16)
    value = np.zeros(len(raw), dtype=np.uint64)
    four = np.uint64(4)
    for col in range(width):  # Horner's rule, one character column at a time
        in_number = (col >= start) & (col < length)
        d = digits[:, col]
        bad |= in_number & (d == 255)
        value = np.where(in_number, (value << four) | (d & 15).astype(np.uint64), value)
    return value, bad


def parse_memtrace(source: str | Path | io.TextIOBase, *, default_size: int = 64,
                   where: str | None = None) -> pd.DataFrame:
    """Parse a trace (path, or text when ``source`` is a str containing a newline).

    Returns columns time (int64, or float64 if any time has a fraction), address
    (uint64), is_write (bool) and size (int64); ``df.attrs["timed"]`` says whether
    the file gave times.
    """
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        where = where or str(source)
        try:
            text = Path(source).read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            raise SpecError("file not found", where=where) from None
        except OSError as e:
            raise SpecError(f"cannot read memory trace: {e}", where=where) from None
    else:
        text = source if isinstance(source, str) else source.read()
        where = where or "<memtrace>"
    first = next((ln.split("#", 1)[0].split() for ln in io.StringIO(text)
                  if ln.split("#", 1)[0].strip()), None)
    if first is None:  # replayed, it gave a row of zeros and an empty row-hit rate
        raise SpecError("no accesses: expected one '<time> <hex address> <R|W> [size]' per line", where=where)
    timed = len(first) >= 3 and first[1].upper() not in _OPS
    names = ["time", "address", "op", "size"] if timed else ["address", "op", "size"]

    def fail(row: int, message: str) -> SpecError:
        return SpecError(message, where=f"{where}:{_data_line_number(text.splitlines(), row)}")

    try:
        # one spare column catches lines with a field too many (pandas would otherwise
        # take the extra leading field as an index)
        df = pd.read_csv(io.StringIO(text), sep=r"\s+", header=None, names=[*names, "extra"],
                         comment="#", dtype={"address": object, "op": object, "extra": object},
                         engine="c", skip_blank_lines=True, index_col=False)
    except pd.errors.ParserError:
        # too many fields somewhere: find the line (error path only, so a loop is fine)
        for no, line in enumerate(text.splitlines(), start=1):
            if len(line.split("#", 1)[0].split()) > len(names):
                raise SpecError(f"expected at most {len(names)} fields ({' '.join(names)})",
                                where=f"{where}:{no}") from None
        raise SpecError("cannot parse memory trace", where=where) from None

    extra = df["extra"].notna().to_numpy()
    if extra.any():
        raise fail(int(extra.argmax()), f"expected at most {len(names)} fields ({' '.join(names)})")
    missing = df["op"].isna().to_numpy()
    if missing.any():
        raise fail(int(missing.argmax()), f"expected {' '.join(names[:-1])} [size]")
    codes, kinds = pd.factorize(df["op"])  # a handful of distinct strings: map those
    lookup = np.array([_OPS.get(str(k).upper(), -1) for k in kinds], dtype=np.int8)
    ops = lookup[codes]
    bad = ops < 0
    if bad.any():
        row = int(bad.argmax())
        raise fail(row, f"access type must be R or W, got {df['op'].iloc[row]!r}")
    is_write = ops == 1

    address, bad = _hex_to_uint64(df["address"].to_numpy(dtype=object))
    if bad.any():
        row = int(bad.argmax())
        raise fail(row, f"bad hex address {df['address'].iloc[row]!r} (at most 64 bits)")

    if timed:
        t = pd.to_numeric(df["time"], errors="coerce")
        bad = (t.isna() | (t < 0)).to_numpy()
        if bad.any():
            row = int(bad.argmax())
            raise fail(row, f"bad time {str(df['time'].iloc[row])!r} (a non-negative number)")
        big = ~(t.to_numpy(dtype=np.float64) <= MAX_TIME)  # inf and values past 2**53
        if big.any():
            row = int(big.argmax())
            raise fail(row, f"time {str(df['time'].iloc[row])!r} is too large (at most 2**53 = {MAX_TIME:,})")
        if pd.api.types.is_integer_dtype(t.dtype):
            time = t.to_numpy(dtype=np.int64)
        else:
            tv = t.to_numpy(dtype=np.float64)
            time = tv.astype(np.int64) if np.all(tv == np.floor(tv)) else tv
    else:
        time = np.arange(len(df), dtype=np.int64)

    if df["size"].isna().all():
        size = np.full(len(df), default_size, dtype=np.int64)
    else:
        s = pd.to_numeric(df["size"], errors="coerce")
        given = df["size"].notna().to_numpy()
        sv = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = given & (np.isnan(sv) | (sv <= 0) | (sv != np.floor(sv)))
        if bad.any():
            row = int(bad.argmax())
            raise fail(row, f"bad size {str(df['size'].iloc[row])!r} (a positive integer of bytes)")
        big = given & (sv > MAX_SIZE)
        if big.any():
            row = int(big.argmax())
            raise fail(row, f"size {str(df['size'].iloc[row])!r} is too large (at most 1 TiB = {MAX_SIZE:,} bytes)")
        size = np.where(given, np.nan_to_num(sv), default_size).astype(np.int64)
    return _frame(time, address, is_write, size, timed=timed)


def _frame(time, address, is_write, size, *, timed: bool) -> pd.DataFrame:
    df = pd.DataFrame({"time": time, "address": address.astype(np.uint64),
                       "is_write": is_write.astype(bool), "size": size.astype(np.int64)})
    df.attrs["timed"] = timed
    return df


def summary(trace: pd.DataFrame) -> dict[str, float]:
    """Access and byte counts of a parsed trace, plus its time span and distinct 64-byte lines."""
    w = trace["is_write"].to_numpy()
    size = trace["size"].to_numpy()
    t = trace["time"].to_numpy()
    return {
        "accesses": int(len(trace)),
        "reads": int((~w).sum()),
        "writes": int(w.sum()),
        "read_bytes": float(size[~w].sum()),
        "write_bytes": float(size[w].sum()),
        "bytes": float(size.sum()),
        "time_span": float(t.max() - t.min()) if len(t) else 0.0,
        "distinct_lines": int(np.unique(trace["address"].to_numpy() >> np.uint64(6)).size),
    }

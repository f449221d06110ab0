"""Request streams: Poisson arrivals with length distributions, or a trace file.

A trace is a CSV file with a header row naming the columns ``arrival_s``, ``prompt_tokens``
and ``output_tokens`` (others are ignored), or a JSON-lines file (``.jsonl``, ``.json``) with
one object per line holding those keys; a ``.json`` file may instead hold one array of such
objects. Arrival times are seconds (a number >= 0); token counts are positive integers.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dse.errors import SpecError

if TYPE_CHECKING:
    import numpy as np

TRACE_COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")

#: Most requests in one run. The scheduler simulates about 8,000 requests per second of CPU
#: and holds about 1.5 kB per request (200,000 requests: 26 s, 420 MB on the development
#: machine), so a million take a few minutes and 1.5 GB; more would run for hours or exhaust
#: memory (99,999,999,999 asked numpy for 745 GiB).
MAX_REQUESTS = 1_000_000
#: Largest trace file read (a million requests fit in about 40 MB of CSV).
MAX_TRACE_BYTES = 200 * 2**20

_INTEGER = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    #: where the request was read (``trace.csv:7``), for error messages; not part of its identity
    source: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Lengths:
    """Token counts: every request ``low`` (when low == high) or uniform on [low, high]."""

    low: int
    high: int

    @classmethod
    def parse(cls, value: int | str, field: str) -> "Lengths":
        """``512`` or ``"128-1024"``."""
        text = str(value).strip()
        lo, sep, hi = text.partition("-")
        try:
            low, high = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise SpecError(f"expected a token count such as 512 or a range such as 128-1024, got {value!r}",
                            field=field) from None
        if low <= 0 or high < low:
            raise SpecError(f"token counts must be positive and low <= high, got {value!r}", field=field)
        return cls(low, high)

    def draw(self, rng: "np.random.Generator", n: int) -> "np.ndarray":
        import numpy as np

        if self.low == self.high:
            return np.full(n, self.low, dtype=np.int64)
        return rng.integers(self.low, self.high + 1, size=n)


def check_count(count: Any, field: str = "requests") -> None:
    """A number of requests: a positive integer of at most MAX_REQUESTS."""
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise SpecError(f"must be a positive number of requests, got {count!r}", field=field)
    if count > MAX_REQUESTS:
        raise SpecError(f"{count:,} requests is more than the {MAX_REQUESTS:,} a run simulates "
                        "(a million take minutes of CPU and about 1.5 GB)", field=field)


def check_seed(seed: Any, field: str = "seed") -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"must be an integer >= 0, got {seed!r}", field=field)


def poisson_requests(rate_per_s: float, count: int, prompt: Lengths, output: Lengths,
                     seed: int = 0) -> list[Request]:
    """``count`` requests with exponential inter-arrival times of mean 1/rate."""
    import numpy as np

    if not rate_per_s > 0:
        raise SpecError(f"arrival rate must be positive, got {rate_per_s!r}", field="rate")
    check_count(count)
    check_seed(seed)
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, size=count))
    p, o = prompt.draw(rng, count), output.draw(rng, count)
    return [Request(i, float(a), int(pi), int(oi)) for i, (a, pi, oi) in enumerate(zip(arrivals, p, o))]


def _arrival(value: Any, where: str | None) -> float:
    given = value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0):
        raise SpecError(f"arrival_s must be a time in seconds >= 0, got {given!r}", where=where)
    return float(value)


def _tokens(value: Any, name: str, where: str | None) -> int:
    given = value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise SpecError(f"{name} must be a positive integer, got {given!r}", where=where)
    return int(value)


def _csv_rows(text: str, name: str) -> list[tuple[str, dict]]:
    """(``file:line``, {column: cell}) per data row of a CSV with a header row."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text))
    header = None
    rows = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            cells = [c.strip() for c in cells]
            if header is None:
                header = cells
                missing = [c for c in TRACE_COLUMNS if c not in header]
                if missing:
                    raise SpecError(f"missing column(s) {', '.join(missing)} in the header row "
                                    f"(a trace has {', '.join(TRACE_COLUMNS)})", where=f"{name}:{reader.line_num}")
                index = {c: header.index(c) for c in TRACE_COLUMNS}
                continue
            where = f"{name}:{reader.line_num}"
            if len(cells) < len(header):
                raise SpecError(f"expected {len(header)} cells ({', '.join(header)}), got {len(cells)}",
                                where=where)
            rows.append((where, {c: cells[i] for c, i in index.items()}))
    except csv.Error as exc:
        raise SpecError(f"cannot read the trace as CSV ({exc})", where=f"{name}:{reader.line_num}") from None
    if header is None:
        raise SpecError(f"empty trace: expected a header row ({', '.join(TRACE_COLUMNS)})", where=name)
    return rows


def _json_object(text: str, where: str) -> Any:
    import json

    def no_repeats(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                raise SpecError(f"key {k!r} given twice", where=where)
            seen[k] = v
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_repeats)
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"not valid JSON ({str(exc).split(':')[0]})", where=where) from None


def _json_rows(text: str, name: str) -> list[tuple[str, dict]]:
    """(``file:line``, object) per request of a JSON-lines file, or of one JSON array."""
    if name.lower().endswith(".json") and text.lstrip().startswith("["):
        items = _json_object(text, name)
        if not isinstance(items, list):
            raise SpecError("expected an array of request objects", where=name)
        found = [(f"{name}: request {i}", item) for i, item in enumerate(items)]
    else:
        found = [(f"{name}:{no}", _json_object(line, f"{name}:{no}"))
                 for no, line in enumerate(text.splitlines(), start=1) if line.strip()]
    for where, item in found:
        if not isinstance(item, dict):
            raise SpecError(f"expected a JSON object with {', '.join(TRACE_COLUMNS)}, got {type(item).__name__} "
                            f"{item!r}", where=where)
        missing = [c for c in TRACE_COLUMNS if c not in item]
        if missing:
            raise SpecError(f"missing key(s) {', '.join(missing)} (a request has {', '.join(TRACE_COLUMNS)})",
                            where=where)
    return found


def load_trace(path: str | Path) -> list[Request]:
    """Requests from a CSV or JSON-lines trace, sorted by arrival time; a bad value is a
    SpecError naming the file, its line and the column."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise SpecError("trace file not found", where=name)
    try:
        if path.stat().st_size > MAX_TRACE_BYTES:
            raise SpecError(f"trace of {path.stat().st_size:,} bytes is larger than the {MAX_TRACE_BYTES:,} "
                            "accepted", where=name)
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError("not a text file (a trace is CSV or JSON lines)", where=name) from None
    except OSError as exc:
        raise SpecError(f"cannot read the trace: {exc.strerror or exc}", where=name) from None
    if "\0" in text:
        raise SpecError("not a text file (a trace is CSV or JSON lines)", where=name)
    rows = _json_rows(text, name) if path.suffix.lower() in (".jsonl", ".json") else _csv_rows(text, name)
    if not rows:
        raise SpecError("the trace has no requests", where=name)
    if len(rows) > MAX_REQUESTS:
        raise SpecError(f"{len(rows):,} requests is more than the {MAX_REQUESTS:,} a run simulates", where=name)
    out = [Request(i, _arrival(row["arrival_s"], where),
                   _tokens(row["prompt_tokens"], "prompt_tokens", where),
                   _tokens(row["output_tokens"], "output_tokens", where), where)
           for i, (where, row) in enumerate(rows)]
    out.sort(key=lambda r: (r.arrival_s, r.id))
    return out


def check_requests(requests: Any) -> None:
    """Requests given to the simulator directly: a non-empty list of Request with finite
    arrivals >= 0 and positive integer token counts (each named by its position)."""
    if not isinstance(requests, (list, tuple)) or not requests:
        raise SpecError(f"expected a non-empty list of Request, got {type(requests).__name__}", field="requests")
    check_count(len(requests))
    for i, r in enumerate(requests):
        if not isinstance(r, Request):
            raise SpecError(f"expected a Request, got {type(r).__name__} {r!r}", field=f"requests[{i}]")
        where = r.source
        try:
            _arrival(r.arrival_s, where)
            _tokens(r.prompt_tokens, "prompt_tokens", where)
            _tokens(r.output_tokens, "output_tokens", where)
        except SpecError as exc:
            raise SpecError(exc.message, where=where, field=None if where else f"requests[{i}]") from None


def check_context(requests: list[Request], max_context: int, model: str) -> None:
    """A request must fit the model's context: prompt, and prompt plus output."""
    for r in requests:
        if r.prompt_tokens > max_context:
            raise SpecError(f"request {r.id}: prompt of {r.prompt_tokens} tokens is longer than the "
                            f"context of {model} ({max_context} tokens)", field="prompt_tokens", where=r.source)
        if r.prompt_tokens + r.output_tokens > max_context:
            raise SpecError(f"request {r.id}: prompt plus output ({r.prompt_tokens} + {r.output_tokens} "
                            f"tokens) exceeds the context of {model} ({max_context} tokens)",
                            field="output_tokens", where=r.source)

"""Request streams: Poisson arrivals with length distributions, or a trace file.

A trace is a CSV (or JSON lines) file with one request per row and the columns
``arrival_s``, ``prompt_tokens`` and ``output_tokens``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dse.errors import SpecError

if TYPE_CHECKING:
    import numpy as np

TRACE_COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int


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


def poisson_requests(rate_per_s: float, count: int, prompt: Lengths, output: Lengths,
                     seed: int = 0) -> list[Request]:
    """``count`` requests with exponential inter-arrival times of mean 1/rate."""
    import numpy as np

    if not rate_per_s > 0:
        raise SpecError(f"arrival rate must be positive, got {rate_per_s!r}", field="rate")
    if count <= 0:
        raise SpecError(f"must be a positive number of requests, got {count!r}", field="requests")
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, size=count))
    p, o = prompt.draw(rng, count), output.draw(rng, count)
    return [Request(i, float(a), int(pi), int(oi)) for i, (a, pi, oi) in enumerate(zip(arrivals, p, o))]


def load_trace(path: str | Path) -> list[Request]:
    """Requests from a CSV or JSON-lines trace, sorted by arrival time."""
    import numpy as np
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SpecError("trace file not found", where=str(path))
    try:
        df = pd.read_json(path, lines=True) if path.suffix.lower() in (".jsonl", ".json") else pd.read_csv(path)
    except ValueError as exc:
        raise SpecError(f"cannot read the trace ({exc})", where=str(path)) from None
    missing = [c for c in TRACE_COLUMNS if c not in df.columns]
    if missing:
        raise SpecError(f"missing column(s) {', '.join(missing)} (a trace has {', '.join(TRACE_COLUMNS)})",
                        where=str(path))
    if df.empty:
        raise SpecError("the trace has no requests", where=str(path))
    out = []
    for i, row in enumerate(df[list(TRACE_COLUMNS)].itertuples(index=False)):
        line = f"{path}:{i + 2}"  # header is line 1 of a CSV
        a, p, o = row
        if not (isinstance(a, (int, float, np.number)) and np.isfinite(a) and a >= 0):
            raise SpecError(f"arrival_s must be a time >= 0, got {a!r}", where=line)
        for name, v in (("prompt_tokens", p), ("output_tokens", o)):
            if not (isinstance(v, (int, np.integer)) and v > 0):
                raise SpecError(f"{name} must be a positive integer, got {v!r}", where=line)
        out.append(Request(i, float(a), int(p), int(o)))
    out.sort(key=lambda r: (r.arrival_s, r.id))
    return out


def check_context(requests: list[Request], max_context: int, model: str) -> None:
    """A request must fit the model's context: prompt, and prompt plus output."""
    for r in requests:
        if r.prompt_tokens > max_context:
            raise SpecError(f"request {r.id}: prompt of {r.prompt_tokens} tokens is longer than the "
                            f"context of {model} ({max_context} tokens)", field="prompt_tokens")
        if r.prompt_tokens + r.output_tokens > max_context:
            raise SpecError(f"request {r.id}: prompt plus output ({r.prompt_tokens} + {r.output_tokens} "
                            f"tokens) exceeds the context of {model} ({max_context} tokens)",
                            field="output_tokens")

"""Kind ``serving``: serve a list of requests with dse.serving and compare a latency statistic.

A case gives the architecture, the serving knobs as a ``serve:...`` spec (model, formats,
batch cap, chunk size) and the requests as ``[arrival_s, prompt_tokens, output_tokens]``
triples, as a benchmark client sent them. Metrics are the run's percentiles and means
(``ttft_p50_s``, ``tpot_p50_s``, ...), per request as vLLM's benchmark computes them: TTFT
from arrival to the first token, TPOT as (end-to-end - TTFT) / (output tokens - 1).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from dse.serving.requests import MAX_REQUESTS
from dse.validate.case import CaseBase

#: seconds from the first request, finite and >= 0
_Arrival = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: a token count: a positive integer (strict: neither true nor 12.5)
_Tokens = Annotated[int, Field(gt=0, strict=True)]


class Case(CaseBase):
    METRICS = {f"{m}_{s}_s": "time" for m in ("ttft", "tpot", "e2e") for s in ("p50", "p90", "p99", "mean")}

    kind: Literal["serving"]
    architecture: str = Field(min_length=1)
    serve: str = Field(min_length=1, description="serving spec: serve:model=...,batch_cap=...,chunk_tokens=...")
    requests: list[tuple[_Arrival, _Tokens, _Tokens]] = Field(
        min_length=1, max_length=MAX_REQUESTS, description="[arrival_s, prompt_tokens, output_tokens] per request")

    @field_validator("serve")
    @classmethod
    def _serving_spec(cls, v: str) -> str:
        from dse.serving import parse_serving_spec

        parse_serving_spec(v)  # unknown knobs fail when the file is read
        return v


def evaluate(case: Case, base: Path) -> float:
    from dse.serving import Request, parse_serving_spec, simulate_serving
    from dse.spec.loader import load_architecture

    arch = load_architecture(case.architecture)
    reqs = [Request(i, float(a), int(p), int(o)) for i, (a, p, o) in enumerate(case.requests)]
    value = simulate_serving(arch, parse_serving_spec(case.serve), requests=reqs)[case.metric]
    if value is None:  # a TPOT where every output is one token long
        from dse.errors import SpecError

        raise SpecError(f"{case.metric}: no request has a second token, so there is no TPOT", field="requests")
    return float(value)

"""What a serving run is: the model and its formats, the request stream, the scheduler's
knobs and the SLOs. Written as ``serve:model=llama-3-70b,rate=2,batch_cap=32,...`` where a
workload spec is expected (a study's workloads), or built by ``dse serve``'s options.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from dse.errors import SpecError
from dse.serving.requests import (Lengths, Request, check_context, check_count, check_seed, load_trace,
                                  poisson_requests)
from dse.workloads.models.llm_config import Formats, LlmShape, load_config

#: the prefix that marks a workload spec as a serving run
PREFIX = "serve"
#: study parameters under this prefix set a serving run's knobs (``serving.batch_cap``), not
#: an architecture field
PARAM_PREFIX = "serving."


@dataclass(frozen=True)
class ServingSpec:
    model: str = "llama-3-8b"
    #: activations' (compute) format; weights and KV cache default to it
    precision: str = "bf16"
    weight_precision: str | None = None
    kv_precision: str | None = None
    #: Poisson arrivals (requests/s) of ``requests`` requests, unless ``trace`` is given
    rate: float = 1.0
    requests: int = 200
    prompt_tokens: str = "512"
    output_tokens: str = "128"
    trace: str | None = None
    seed: int = 0
    #: most sequences in the running batch (prefilling and decoding)
    batch_cap: int = 64
    #: most prompt tokens prefilled per iteration (chunked prefill, as in Sarathi-Serve)
    chunk_tokens: int = 512
    #: tokens per paged KV-cache block (vLLM's default block size)
    block_tokens: int = 16
    #: "paged": blocks allocated as sequences grow, preempting the newest when full;
    #: "reserve": blocks for prompt + output reserved at admission (never preempts)
    admission: str = "paged"
    #: what a preempted sequence loses: "recompute" (its KV, rebuilt by a new prefill) or
    #: "swap" (its KV, copied to the next memory tier and back)
    preemption: str = "recompute"
    slo_ttft_s: float = 0.2
    slo_tpot_s: float = 0.05
    #: prefill on one chip and decode on a second chip of the same design, the KV cache of each
    #: prompt crossing ``kv_link`` between them
    disaggregated: bool = False
    #: default: one direction of an H100's NVLink 4, 900 GB/s in total (H100 datasheet, 2023)
    kv_link: str = "450 GB/s"
    #: the folder a relative ``trace`` or ``model`` path is read from first (a study's own
    #: folder, as its ``architecture:`` is); not a knob, not part of the label
    base_dir: str | None = None

    def __post_init__(self):
        for name in ("rate", "slo_ttft_s", "slo_tpot_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                what = "arrival rate" if name == "rate" else name
                raise SpecError(f"{what} must be positive, got {v!r}", field=name)
        check_count(self.requests)
        check_seed(self.seed)
        for name in ("batch_cap", "chunk_tokens", "block_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise SpecError(f"must be a positive integer, got {v!r}", field=name)
        if self.admission not in ("paged", "reserve"):
            raise SpecError(f"must be paged or reserve, got {self.admission!r}", field="admission")
        if self.preemption not in ("recompute", "swap"):
            raise SpecError(f"must be recompute or swap, got {self.preemption!r}", field="preemption")
        self.formats  # noqa: B018 - checks the format names
        self.kv_link_bytes_per_s  # noqa: B018 - checks the link bandwidth
        if not isinstance(self.disaggregated, bool):
            raise SpecError(f"expects true or false, got {self.disaggregated!r}", field="disaggregated")

    @property
    def kv_link_bytes_per_s(self) -> float:
        from dse.units import to_si

        try:
            bw = to_si(self.kv_link, "bandwidth")
        except ValueError as exc:
            raise SpecError(str(exc), field="kv_link") from None
        if not bw > 0:
            raise SpecError(f"must be positive, got {self.kv_link!r}", field="kv_link")
        return bw

    @property
    def formats(self) -> Formats:
        return Formats(self.weight_precision or self.precision, self.precision,
                       self.kv_precision or self.precision)

    def _local(self, path: str) -> str:
        """``path``, or the same relative path in ``base_dir`` where a file or folder is there."""
        if self.base_dir and not Path(path).is_absolute():
            near = Path(self.base_dir) / path
            if near.exists():
                return str(near)
        return path

    def shape(self) -> LlmShape:
        try:
            return load_config(self._local(self.model))
        except SpecError as exc:
            if exc.where == self.model and exc.message.startswith("no bundled model"):  # no file to name
                raise SpecError(f"{self.model!r}: {exc.message}", field="model") from None
            raise

    def weight_bytes(self) -> float:
        """Every weight of the model in its format (what must fit beside the KV cache)."""
        return self.shape().weight_bytes(self.formats)

    def stream(self, shape: LlmShape | None = None) -> list[Request]:
        """The requests, checked against the model's context."""
        shape = shape or self.shape()
        if self.trace:
            path = self._local(self.trace)
            if not Path(path).is_file():
                elsewhere = self.base_dir and Path(self.base_dir).resolve() != Path.cwd().resolve()
                looked = f" (looked in {self.base_dir} and the current folder)" if elsewhere else ""
                raise SpecError(f"file {self.trace!r} not found{looked}", field="trace")
            reqs = load_trace(path)
            check_context(reqs, shape.max_context, shape.name)
            return reqs
        prompt, output = self._lengths(shape)
        return poisson_requests(self.rate, self.requests, prompt, output, self.seed)

    def _lengths(self, shape: LlmShape) -> tuple[Lengths, Lengths]:
        """The drawn lengths, whose longest request must fit the model's context (so that a
        study knows before its first trial, whatever the seed draws)."""
        prompt = Lengths.parse(self.prompt_tokens, "prompt_tokens")
        output = Lengths.parse(self.output_tokens, "output_tokens")
        if prompt.high > shape.max_context:
            raise SpecError(f"a prompt of {prompt.high} tokens is longer than the context of {shape.name} "
                            f"({shape.max_context} tokens)", field="prompt_tokens")
        if prompt.high + output.high > shape.max_context:
            raise SpecError(f"prompt plus output ({prompt.high} + {output.high} tokens) exceeds the context of "
                            f"{shape.name} ({shape.max_context} tokens)", field="output_tokens")
        return prompt, output

    def check(self) -> None:
        """Everything a run would find wrong before it simulates: the model, the trace file and
        its requests, the drawn lengths against the context (a study calls this when it is
        read, so that a bad serving workload fails once, not in every trial)."""
        shape = self.shape()
        if self.trace:
            self.stream(shape)
        else:
            self._lengths(shape)

    @property
    def label(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                   if getattr(self, f.name) != f.default and f.name != "base_dir"]
        return PREFIX + (":" + ",".join(changed) if changed else "")

    def with_values(self, **values: Any) -> "ServingSpec":
        return from_dict({**{f.name: getattr(self, f.name) for f in fields(self)}, **values})


def is_serving_spec(text: str) -> bool:
    return isinstance(text, str) and (text == PREFIX or text.startswith(PREFIX + ":"))


def split_serving(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's values as (architecture paths -> value, serving field -> value)."""
    arch = {k: v for k, v in values.items() if not k.startswith(PARAM_PREFIX)}
    serving = {k[len(PARAM_PREFIX):]: v for k, v in values.items() if k.startswith(PARAM_PREFIX)}
    return arch, serving


#: the knobs that decide the request stream (a study checks each searched value of these)
STREAM_FIELDS = ("model", "rate", "requests", "prompt_tokens", "output_tokens", "trace", "seed")


def serving_fields() -> list[str]:
    """The knobs a study may search (``serving.<name>``) or a ``serve:`` spec may set."""
    return [f.name for f in fields(ServingSpec) if f.name != "base_dir"]


def check_serving_values(run: ServingSpec, values: dict[str, Any]) -> ServingSpec:
    """``run`` with a trial's ``serving.*`` values, checked as a run would find it (the stream
    too where a value changes it: a trace that is missing, a prompt past the context)."""
    new = run.with_values(**values)
    if any(k in STREAM_FIELDS for k in values):
        new.check()
    return new


def check_tpot_defined(metric: str | None, runs: list, *, where: str | None = None) -> None:
    """A study's objective or constraint on TPOT (``tpot_p99_s``...) needs its serving runs to
    have requests with a second token: where every output is one token long there is no TPOT
    (the summary leaves it empty), and such a goal would be met, or ranked, on nothing."""
    from dse.results import TPOT

    if not metric or not metric.startswith(TPOT[:-len("_s")] + "_"):
        return
    for run in runs:
        if not isinstance(run, ServingSpec):
            continue
        if run.trace:
            longest = max(r.output_tokens for r in run.stream())
        else:
            longest = Lengths.parse(run.output_tokens, "output_tokens").high
        if longest < 2:
            raise SpecError(f"'{metric}': no request of {run.label} has a second token "
                            "(every output is 1 token), so it has no TPOT", where=where)


def from_dict(values: dict[str, Any]) -> ServingSpec:
    known = {f.name: f for f in fields(ServingSpec)}
    for key in values:
        if key not in known:
            raise SpecError(f"unknown serving parameter {key!r} (valid: {', '.join(serving_fields())})", field=key)
    clean = {}
    for key, v in values.items():
        default = known[key].default
        if isinstance(default, float) and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if isinstance(default, str) and key in ("prompt_tokens", "output_tokens"):
            v = str(v)
        if default is None and v is not None:
            v = str(v)
        if key == "kv_link" and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = f"{v} B/s"
        clean[key] = v
    return replace(ServingSpec(), **clean) if clean else ServingSpec()


def parse_serving_spec(text: str) -> ServingSpec:
    """``serve:model=llama-3-70b,rate=2,batch_cap=32`` -> ServingSpec (values as in workload specs;
    a length range is written ``prompt_tokens=128-1024``)."""
    from dse.workloads.registry import parse_spec

    name, params = parse_spec(text)
    if name != PREFIX:
        raise SpecError(f"a serving spec starts with '{PREFIX}:'", where=text)
    for key in ("prompt_tokens", "output_tokens"):  # "128-1024" must stay text
        if key in params:
            params[key] = str(params[key])
    if "base_dir" in params:
        raise SpecError(f"unknown serving parameter 'base_dir' (valid: {', '.join(serving_fields())})",
                        where=text, field="base_dir")
    try:
        return from_dict(params)
    except SpecError as exc:
        raise SpecError(exc.message, where=text, field=exc.field) from None

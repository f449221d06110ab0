"""One trial: suggested parameters -> architecture -> simulate every workload ->
aggregated metrics -> objective values and constraint values.

Aggregation over weighted workloads (weights normalised to sum to 1) treats the
mix as one job in which workload i runs w_i times: extensive quantities (time,
energy, ops, bytes) are weighted sums and rates are ratios of those sums, so
``tops_per_w`` = sum(w ops) / sum(w energy) and ``avg_power_w`` = sum(w energy) /
sum(w time). A constraint must hold on every workload: its value for the trial
is the worst (largest) over the workloads; <= 0 is feasible, as in Optuna.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import optuna

from dse import results as R
from dse.errors import DseError, SpecError
from dse.sim.engine import plan_memory, simulate
from dse.spec.architecture import Architecture
from dse.spec.variants import build_variant
from dse.units import to_si
from dse.workloads.ops import Workload

FITS_MEMORY = "fits_memory"
#: Per-workload column: bytes beyond what the memories hold, by the engine's allocator.
CAPACITY_MARGIN = R.CAPACITY_MARGIN
#: User attribute holding a trial's metrics, derived values and constraint values.
RESULT_ATTR = "result"
ERROR_ATTR = "error"
#: User attribute of a trial whose design an earlier trial already evaluated: that trial's number.
DUPLICATE_ATTR = "duplicate_of"
#: Optuna's system attribute for constraint values (optuna.study._constrained_optimization).
CONSTRAINTS_SYSTEM_ATTR = "constraints"

_EXTRA_METRICS = ("total_ops", "macs", "dynamic_energy_j", "static_energy_j", "samples", "sim_events")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "maximize" | "minimize"

    def worst(self) -> float:
        return 0.0 if self.direction == "maximize" else math.inf


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` or ``metric >= bound``, or ``fits_memory`` (metric None)."""

    text: str
    metric: str | None = None
    op: str = "<="
    bound: float = 0.0

    def value(self, row: dict) -> float:
        """Violation for one row of metrics: <= 0 when satisfied, NaN when unknown."""
        if self.metric is None:
            return float(row.get(CAPACITY_MARGIN, math.nan))
        v = row.get(self.metric)
        if v is None or not isinstance(v, (int, float)):
            return math.nan
        return v - self.bound if self.op == "<=" else self.bound - v


def metric_names(arch: Architecture) -> list[str]:
    """Numeric metrics the engine reports for this architecture (objective/constraint names)."""
    if not isinstance(arch, Architecture):  # a system of many chips (dse.system.study)
        from dse.system import study as system_study

        return system_study.metric_names(arch)
    names = list(R.CORE_METRICS) + list(_EXTRA_METRICS) + [CAPACITY_MARGIN]
    names += [R.energy_col(c.name) for c in arch.components()]
    names += [R.busy_col(u.name) for u in arch.compute] + [R.busy_col(m.name) for m in arch.memories]
    names += [R.bytes_read_col(m.name) for m in arch.memories]
    names += [R.bytes_written_col(m.name) for m in arch.memories]
    names += [R.peak_bytes_col(s.name) for s in [*arch.sram, *arch.memories]]
    return names


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*(.+?)\s*$")


def parse_constraint(text: str, known: list[str], *, where: str | None = None) -> Constraint:
    """'avg_power_w <= 75', 'area_mm2 <= 400 mm^2', 'throughput_samples_per_s >= 1000', 'fits_memory'."""
    from dse.search.study_spec import si_number

    if text.strip() == FITS_MEMORY:
        return Constraint(FITS_MEMORY)
    m = _CONSTRAINT.match(text)
    if not m:
        raise SpecError(f"constraint '{text}' should read '<metric> <= <number>', "
                        f"'<metric> >= <number>' or '{FITS_MEMORY}'", where=where)
    metric, op, bound = m.groups()
    check_metric(metric, known, where=where)
    try:
        dim = _dimension(metric)
        value = float(to_si(bound, dim) if dim else si_number(bound))
    except ValueError as exc:
        raise SpecError(f"constraint '{text}': {exc}", where=where) from None
    return Constraint(text.strip(), metric, "<=" if op.startswith("<") else ">=", value)


def _dimension(metric: str) -> str | None:
    """The unit dimension of a metric, from the suffix its name carries."""
    if metric.startswith("bytes_") or metric.endswith("_bytes"):
        return "bytes"
    for suffix, dim in (("_per_s", None), ("_mm2", "area"), ("_w", "power"), ("_j", "energy"), ("_s", "time")):
        if metric.endswith(suffix):
            return dim
    return None


def check_metric(metric: str, known: list[str], *, where: str | None = None) -> None:
    if metric in known:
        return
    import difflib

    close = difflib.get_close_matches(metric, known, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise SpecError(f"'{metric}' names no metric{hint}", where=where)


# ---- aggregation over weighted workloads -----------------------------------------
def _sum(rows, weights, key) -> float:
    return sum(w * r.get(key, math.nan) for r, w in zip(rows, weights))


def aggregate(rows: list[dict], weights: list[float]) -> dict:
    """One row of metrics for the weighted mix of workloads (see the module docstring)."""
    total_w = sum(weights)
    weights = [w / total_w for w in weights]
    if len(rows) == 1:
        return dict(rows[0])
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    t = _sum(rows, weights, R.LATENCY)
    e = _sum(rows, weights, R.ENERGY)
    ops = _sum(rows, weights, "total_ops")
    samples = _sum(rows, weights, "samples")
    out: dict[str, Any] = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        if any(isinstance(v, str) for v in vals):
            out[k] = vals[0] if len(set(vals)) == 1 else None
        elif k in (R.AREA, CAPACITY_MARGIN):
            out[k] = max((v for v in vals if v is not None), default=math.nan)
        elif k.startswith("busy_"):
            out[k] = sum(w * r.get(k, math.nan) * r.get(R.LATENCY, math.nan)
                         for r, w in zip(rows, weights)) / t if t else math.nan
        else:
            out[k] = _sum(rows, weights, k)
    out[R.THROUGHPUT_OPS] = ops / t if t else math.nan
    out[R.THROUGHPUT_SAMPLES] = samples / t if t else math.nan
    out[R.AVG_POWER] = e / t if t else math.nan
    out[R.TOPS_PER_W] = ops / e / 1e12 if e else math.nan
    out[R.ENERGY_PER_SAMPLE] = e / samples if samples else math.nan
    if R.BOUND in out:
        # the resource that bounds the workload taking most of the mix's time
        slowest = max(range(len(rows)), key=lambda i: weights[i] * rows[i].get(R.LATENCY, 0.0))
        out[R.BOUND] = rows[slowest].get(R.BOUND)
    return out


def constraint_values(constraints: list[Constraint], rows: list[dict]) -> list[float]:
    """Each constraint's worst value over the workload rows (NaN if known on none)."""
    out = []
    for c in constraints:
        vals = [v for v in (c.value(r) for r in rows) if not math.isnan(v)]
        out.append(max(vals) if vals else math.nan)
    return out


# ---- the trial itself -------------------------------------------------------------
class TrialFailed(Exception):
    """A design that could not be evaluated; its reason is in the trial's 'error' attribute."""


def capacity_margin(arch: Architecture, workload: Workload) -> float:
    """Bytes beyond what the memories hold (<= 0: fits): the engine's own allocator answers,
    so ``fits_memory`` holds exactly when the simulation places every tensor. A serving run
    fits when its KV-cache budget holds at least one block."""
    if not isinstance(arch, Architecture):
        from dse.system import study as system_study

        return system_study.capacity_margin(arch, workload)
    if not isinstance(workload, Workload):
        from dse.serving.budget import margin_bytes

        return margin_bytes(arch, workload)
    return plan_memory(arch, workload).margin_bytes


def run_workload(arch: Architecture, workload, serving: dict[str, Any] | None = None) -> dict:
    """Summary metrics of one workload on one design: the engine's, or a serving run's (with the
    trial's ``serving.*`` values) for a ``serve:...`` workload."""
    if isinstance(workload, Workload):
        return simulate(arch, workload).summary_row
    from dse.serving import simulate_serving

    return simulate_serving(arch, workload.with_values(**serving) if serving else workload).summary_row


def build_architecture(base_doc: dict, overrides: dict[str, Any]) -> Architecture:
    """The study's base document with the trial's values applied, by the one variant builder
    (the same call writes ``best/*.yaml``, so the file is the design scored). A system file
    (chips and a topology) gives a system of many chips."""
    from dse.system.spec import is_system_doc

    if is_system_doc(base_doc):
        from dse.system import study as system_study

        return system_study.system_variant(base_doc, overrides)
    return build_variant(base_doc, overrides).arch


def stored_constraints(cons: list[float]) -> list[float]:
    """Constraint values as Optuna keeps them (the trial's ``constraints`` system attribute, which
    the samplers and optuna-dashboard read): a value no workload could report counts as met
    (Optuna allows no NaN)."""
    return [0.0 if math.isnan(v) else float(v) for v in cons]


def design_doc(base_doc: dict, overrides: dict[str, Any]) -> dict:
    """The file of a trial's design: the base document with its values set."""
    from dse.system.spec import is_system_doc

    if is_system_doc(base_doc):
        from dse.system import study as system_study

        return system_study.system_doc(base_doc, overrides)
    return build_variant(base_doc, overrides).doc


@dataclass
class Outcome:
    """What one design gave: objective values (None: the design failed, ``error`` says why), the
    trial's user attributes (result, error, duplicate_of) and its constraint values."""

    values: list[float] | None
    user_attrs: dict[str, Any]
    constraints: list[float] | None = None

    @property
    def error(self) -> str | None:
        return self.user_attrs.get(ERROR_ATTR)


class Evaluator:
    """A resolved study's designs evaluated: parameter values -> :class:`Outcome` (picklable, so
    workers can rebuild it). Calling it on an Optuna trial makes it an Optuna objective."""

    def __init__(self, study):
        """``study``: a resolved study (dse.search.resolve.Study, which imports this module)."""
        self.study = study
        #: design (its parameter values) -> an earlier completed trial's number, result and values
        self._seen: dict[tuple, tuple[int, dict, list[float]]] = {}

    @staticmethod
    def _key(params: dict[str, Any]) -> tuple:
        return tuple(sorted((k, repr(v)) for k, v in params.items()))

    def remember(self, t: optuna.trial.FrozenTrial) -> None:
        """A finished trial (of any process or earlier run) whose design need not be simulated again."""
        if t.state == optuna.trial.TrialState.COMPLETE and RESULT_ATTR in t.user_attrs and t.values is not None:
            self._seen.setdefault(self._key(t.params), (t.number, t.user_attrs[RESULT_ATTR], list(t.values)))

    def evaluate(self, params: dict[str, Any], number: int | None = None) -> Outcome:
        """The design of these searched values, simulated on every workload (or, when trial
        ``number`` is not the first to propose it, the earlier trial's result again)."""
        st = self.study
        earlier = self._seen.get(self._key(params))
        if earlier is not None:  # a sampler proposing a design again (NSGA-II does): reuse, not re-simulate
            first, result, values = earlier
            return Outcome(list(values), {RESULT_ATTR: result, DUPLICATE_ATTR: first},
                           stored_constraints(result.get("constraints", [])))
        derived: dict[str, Any] = {}
        from dse.serving.spec import split_serving

        try:
            derived = st.space.derive(params)
            design, serving = split_serving({**params, **derived})
            arch = build_architecture(st.base_raw, design)
        except (DseError, ValueError) as exc:
            return self._failed(f"invalid design: {exc}", derived)
        rows: dict[str, dict] = {}
        skip_capacity = any(c.metric is None for c in st.constraints)
        for w in st.workloads:
            # An engine run plans memory first and reports the allocator's margin in its row, so
            # the margin is asked of the allocator alone only where the run cannot report it (a
            # serving run, a system) or did not get that far (a design that does not fit).
            alone = not (isinstance(arch, Architecture) and isinstance(w.workload, Workload))
            margin = capacity_margin(arch, w.workload) if alone else None
            if skip_capacity and margin is not None and margin > 0:
                rows[w.label] = {R.AREA: getattr(arch, "area_mm2", math.nan), CAPACITY_MARGIN: margin}
                continue
            try:
                if not isinstance(arch, Architecture):  # one training step on a system of many chips
                    from dse.system import study as system_study

                    summary = system_study.simulate(arch, w.workload)
                else:
                    summary = run_workload(arch, w.workload, serving)
            except Exception as exc:  # noqa: BLE001 - any failure of one design is recorded, not fatal
                if margin is None:
                    margin = capacity_margin(arch, w.workload)
                    if skip_capacity and margin > 0:
                        rows[w.label] = {R.AREA: getattr(arch, "area_mm2", math.nan), CAPACITY_MARGIN: margin}
                        continue
                kind = "" if isinstance(exc, DseError) else f"{type(exc).__name__}: "
                return self._failed(f"{w.label}: {kind}{exc}", derived)
            row = {k: v for k, v in summary.items() if k not in ("architecture", "workload")}
            if margin is not None or CAPACITY_MARGIN not in row:
                row[CAPACITY_MARGIN] = capacity_margin(arch, w.workload) if margin is None else margin
            rows[w.label] = row
        agg = aggregate(list(rows.values()), [w.weight for w in st.workloads])
        cons = constraint_values(st.constraints, list(rows.values()))
        result = {"metrics": rows, "derived": derived, "constraints": cons}
        values = []
        for o in st.objectives:
            v = agg.get(o.metric)
            values.append(float(v) if isinstance(v, (int, float)) and not math.isnan(v) else o.worst())
        if number is not None:
            self._seen.setdefault(self._key(params), (number, result, values))
        return Outcome(values, {RESULT_ATTR: result}, stored_constraints(cons))

    @staticmethod
    def _failed(message: str, derived: dict[str, Any]) -> Outcome:
        attrs: dict[str, Any] = {RESULT_ATTR: {"derived": derived}} if derived else {}
        attrs[ERROR_ATTR] = message
        return Outcome(None, attrs)

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...] | float:
        """The Optuna objective: a failed design raises :class:`TrialFailed` (its reason in the
        trial's ``error`` attribute)."""
        if not self._seen:  # a resumed study knows its old designs too
            for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
                self.remember(t)
        outcome = self.evaluate(self.study.space.suggest(trial), trial.number)
        for key, value in outcome.user_attrs.items():
            trial.set_user_attr(key, value)
        if outcome.values is None:
            raise TrialFailed(outcome.error)
        trial.storage.set_trial_system_attr(trial._trial_id, CONSTRAINTS_SYSTEM_ATTR, outcome.constraints)
        values = outcome.values
        return values[0] if len(values) == 1 else tuple(values)

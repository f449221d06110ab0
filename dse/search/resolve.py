"""A study file resolved against its base architecture: parameter paths checked,
expressions parsed, metrics known, workloads built. Errors carry file:line."""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dse.errors import DseError, SpecError
from dse.paths import is_file
from dse.results import OBJECTIVE_METRICS
from dse.search.expressions import parse_expression
from dse.search.objective import (
    Constraint,
    Objective,
    build_architecture,
    check_metric,
    metric_names,
    parse_constraint,
)
from dse.search.space import Derived, Parameter, Space
from dse.search.study_spec import StudySpec
from dse.spec.architecture import Architecture
from dse.spec.loader import architecture_from_doc, bundled_dir, bundled_names, resolve
from dse.spec.variants import field_paths
from dse.spec.yaml_io import YamlDoc, read_yaml, spec_error_from_validation
from dse.workloads.ops import Workload


@dataclass
class WorkloadItem:
    label: str
    spec: str
    weight: float  # normalised: the weights of a study sum to 1
    workload: Workload  # or a dse.serving.ServingSpec (a ``serve:...`` spec)


@dataclass
class Study:
    """Everything a trial needs, checked; picklable for worker processes."""

    name: str
    spec: StudySpec
    source: str | None
    base_raw: dict           # the architecture file as written (unit strings kept): every variant's source
    base_arch: Architecture
    space: Space
    objectives: list[Objective]
    constraints: list[Constraint]
    workloads: list[WorkloadItem]
    fingerprint: str = ""

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]


def _where(doc: YamlDoc | None, *loc: Any) -> str | None:
    return doc.where(loc) if doc is not None else None


def bundled_file(kind: str, name: str) -> Path | None:
    """A bundled YAML file by name, or None."""
    path = bundled_dir(kind) / f"{name}.yaml"
    return path if is_file(path) else None


def bundled_studies() -> list[str]:
    return bundled_names("studies")


def load_spec(source: str | Path | StudySpec) -> tuple[StudySpec, YamlDoc | None, Path]:
    """The validated spec, its YAML (for line numbers) and the folder paths are relative to."""
    if isinstance(source, StudySpec):
        return source, None, Path.cwd()
    path = Path(source) if is_file(source) else bundled_file("studies", str(source))
    if path is None:
        if str(source).endswith((".yaml", ".yml")) or "/" in str(source):
            raise SpecError("file not found", where=str(source))
        names = ", ".join(bundled_studies()) or "none"
        raise SpecError(f"no study file or bundled study named '{source}' (bundled: {names})")
    doc = read_yaml(path)
    if not isinstance(doc.data, dict):
        raise SpecError("expected a mapping of study fields at the top level", where=doc.name)
    try:
        spec = StudySpec.model_validate(doc.data)
    except ValidationError as exc:
        raise spec_error_from_validation(exc, doc, StudySpec) from None
    if spec.name is None:
        spec = spec.model_copy(update={"name": path.stem})
    return spec, doc, path.parent


def _load_base(spec: StudySpec, doc: YamlDoc | None, base_dir: Path) -> tuple[YamlDoc, Architecture]:
    where = _where(doc, "architecture")
    candidates = [base_dir / spec.architecture, Path(spec.architecture),
                  bundled_file("architectures", spec.architecture), bundled_file("systems", spec.architecture)]
    path = next((p for p in candidates if p is not None and is_file(p)), None)
    if path is None:
        try:
            path = resolve(spec.architecture, "architectures")
        except SpecError as exc:
            raise SpecError(f"architecture: {exc}", where=where) from None
    arch_doc = read_yaml(path)
    from dse.system.spec import is_system_doc, system_from_doc

    if is_system_doc(arch_doc.data):  # a system of many chips: its spec stands for the design
        return arch_doc, system_from_doc(arch_doc)
    return arch_doc, architecture_from_doc(arch_doc)


def _valid_paths(raw: dict, arch: Architecture) -> list[str]:
    paths = set(field_paths(raw)) | set(field_paths(arch.model_dump()))
    if not isinstance(arch, Architecture):  # a system: every parallelism field may be set
        from dse.system.spec import ParallelismSpec

        paths |= {f"parallelism.{f}" for f in ParallelismSpec.model_fields}
    return sorted(paths - {"name", "description", "sources"})


def _check_units(p, path: str, arch: Architecture, doc) -> None:
    """A unit string in a range must have the dimension of the field it sets."""
    from dse.spec.quantities import dimension_at
    from dse.units import to_si

    dim = dimension_at(arch, path)
    if dim is None:
        return
    for key, text in getattr(p, "_written", {}).items():
        try:
            to_si(text, dim)
        except ValueError as exc:
            raise SpecError(str(exc), where=_where(doc, "parameters", path, key),
                            field=f"parameters.{path}.{key}") from None


def _parameters(spec: StudySpec, doc, valid: list[str], arch: Architecture) -> list[Parameter]:
    from dse.serving.spec import PARAM_PREFIX, serving_fields

    out = []
    for path, p in spec.parameters.items():
        if path.startswith(PARAM_PREFIX):  # a serving run's knob (serving.batch_cap), not the chip's
            if path[len(PARAM_PREFIX):] not in serving_fields():
                raise SpecError(f"'{path}' names no serving parameter (valid: "
                                f"{', '.join(PARAM_PREFIX + f for f in serving_fields())})",
                                where=_where(doc, "parameters", path))
        elif path not in valid:
            close = difflib.get_close_matches(path, valid, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise SpecError(f"'{path}' names no field of the architecture{hint}",
                            where=_where(doc, "parameters", path))
        name = p.name or path.rsplit(".", 1)[-1]
        if not path.startswith(PARAM_PREFIX):
            _check_units(p, path, arch, doc)
        if p.choices is not None:
            out.append(Parameter(path, name, "categorical", choices=tuple(p.choices)))
        else:
            out.append(Parameter(path, name, p.type, p.low, p.high, p.step, p.log))
    return out


def _short_names(params: list[Parameter], derived_paths: list[str]) -> dict[str, str]:
    """Short name -> path, for names that are unambiguous."""
    counts: dict[str, list[str]] = {}
    for p in params:
        counts.setdefault(p.name, []).append(p.path)
    for d in derived_paths:
        counts.setdefault(d.rsplit(".", 1)[-1], []).append(d)
    return {n: paths[0] for n, paths in counts.items() if len(paths) == 1}


def _derived(spec: StudySpec, doc, valid: list[str], params: list[Parameter]) -> list[Derived]:
    searched = {p.path for p in params}
    short = _short_names(params, list(spec.derived))
    known = set(searched) | {p.name for p in params if short.get(p.name) == p.path}
    out = []
    for path, text in spec.derived.items():
        where = _where(doc, "derived", path)
        if path not in valid:
            close = difflib.get_close_matches(path, valid, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise SpecError(f"'{path}' names no field of the architecture{hint}", where=where)
        if path in searched:
            raise SpecError(f"'{path}' is both searched and derived", where=where)
        expr = parse_expression(text, known, where=where)
        name = path.rsplit(".", 1)[-1]
        out.append(Derived(path, name if short.get(name) == path else path, expr))
        known |= {path} | ({name} if short.get(name) == path else set())
    return out


def _check_values(space: Space, base_raw: dict, doc, workloads: list[WorkloadItem]) -> None:
    """Each searched value at its extremes must be accepted by the architecture, or by every
    serving workload of the study (a trace file that is missing, a prompt past the context)."""
    from dse.serving.spec import ServingSpec, check_serving_values, split_serving

    serving_runs = [w.workload for w in workloads if isinstance(w.workload, ServingSpec)] or [ServingSpec()]
    for p in space.parameters:
        values = list(p.choices) if p.kind == "categorical" else [p.low, p.high]
        for v in values:
            arch_values, serving = split_serving({p.path: v})
            try:
                if serving:
                    for run in serving_runs:
                        check_serving_values(run, serving)
                else:
                    build_architecture(base_raw, arch_values)
            except DseError as exc:
                what = f"the serving run: {exc}" if serving else f"the architecture: {exc.message}"
                raise SpecError(f"value {v!r} is rejected by {what}",
                                where=_where(doc, "parameters", p.path)) from None


def _workloads(spec: StudySpec, doc, base_dir: Path) -> list[WorkloadItem]:
    from dse.workloads import load_workload

    total = sum(w.weight for w in spec.workloads)
    out = []
    from dse.serving.spec import is_serving_spec, parse_serving_spec

    for i, w in enumerate(spec.workloads):
        try:
            if is_serving_spec(w.spec):  # a request stream served by the chip (dse.serving)
                wl = parse_serving_spec(w.spec).with_values(base_dir=str(base_dir))
                if w.precision is not None:
                    wl = wl.with_values(precision=w.precision)
                wl.check()  # its trace, model and lengths now, not in every trial
            else:  # a trace file is read from the study's folder first, as its architecture is
                local = base_dir / w.spec
                wl = load_workload(str(local) if is_file(local) else w.spec, batch=w.batch, precision=w.precision)
        except SpecError as exc:
            # an error inside a trace file names that file's line and field; any other (no such
            # file or generator, a bad parameter) names the study's line and entry
            inside = exc.where is not None and exc.where != w.spec
            raise SpecError(f"workload '{w.spec}': {exc.message}",
                            where=exc.where if inside else _where(doc, "workloads", i),
                            field=exc.field if inside else ".".join(filter(None, [f"workloads[{i}]", exc.field]))
                            ) from None
        out.append(WorkloadItem(w.label, w.spec, w.weight / total, wl))
    return out


def _fingerprint(spec: StudySpec, base_raw: dict) -> str:
    """What decides a trial's outcome; a stored study with another fingerprint is another study."""
    keep = spec.model_dump(include={"workloads", "parameters", "derived", "objectives", "constraints"})
    text = json.dumps({"spec": keep, "arch": base_raw}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_study(source: str | Path | StudySpec | Study) -> Study:
    """Load and check a study file (or bundled name, or spec) against its base architecture."""
    if isinstance(source, Study):
        return source
    spec, doc, base_dir = load_spec(source)
    arch_doc, arch = _load_base(spec, doc, base_dir)
    valid = _valid_paths(arch_doc.data, arch)
    params = _parameters(spec, doc, valid, arch)
    space = Space(params, _derived(spec, doc, valid, params))
    workloads = _workloads(spec, doc, base_dir)
    _check_values(space, arch_doc.data, doc, workloads)
    known = metric_names(arch)
    if any(not isinstance(w.workload, Workload) for w in workloads):
        from dse.results import SERVING_METRICS
        known += [*SERVING_METRICS, "kv_blocks", "kv_peak_blocks", "peak_running", "preemptions",
                  "busy_fraction", "mean_decode_batch"]
    objectives = []
    for i, o in enumerate(spec.objectives):
        check_metric(o.metric, known, where=_where(doc, "objectives", i))
        direction = o.direction or OBJECTIVE_METRICS.get(o.metric)
        if direction is None:
            raise SpecError(f"objective '{o.metric}': give a direction (maximize or minimize)",
                            where=_where(doc, "objectives", i))
        objectives.append(Objective(o.metric, direction))
    metrics = [o.metric for o in objectives]
    dupes = sorted({m for m in metrics if metrics.count(m) > 1})
    if dupes:
        raise SpecError(f"objective listed twice: {', '.join(dupes)}", where=_where(doc, "objectives"))
    constraints = [parse_constraint(c, known, where=_where(doc, "constraints", i))
                   for i, c in enumerate(spec.constraints)]
    from dse.serving.spec import check_tpot_defined  # a TPOT goal needs a request with a second token

    for key, metrics in (("objectives", [o.metric for o in objectives]), ("constraints", [c.metric for c in constraints])):
        for i, m in enumerate(metrics):
            check_tpot_defined(m, [w.workload for w in workloads], where=_where(doc, key, i))
    if spec.sampler == "grid":
        try:
            space.grid()
        except SpecError as exc:
            raise SpecError(exc.message, where=_where(doc, "sampler")) from None
    return Study(
        name=spec.name or "study", spec=spec, source=doc.name if doc else None,
        base_raw=arch_doc.data, base_arch=arch, space=space,
        objectives=objectives, constraints=constraints, workloads=workloads,
        fingerprint=_fingerprint(spec, arch_doc.data),
    )

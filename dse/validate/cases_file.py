"""Reading case files: every case validated by the model of its kind, with file and line."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from dse.errors import SpecError
from dse.spec.yaml_io import YamlDoc, read_yaml, spec_error_from_validation
from dse.validate.case import CaseBase
from dse.validate.kinds import KINDS, kind_module


def bundled_cases_dir() -> Path:
    """The shipped suite (dse/validate/cases), wherever dse is installed."""
    return Path(str(resources.files("dse.validate"))) / "cases"


def _case_doc(doc: YamlDoc, index: int, data: dict) -> YamlDoc:
    """A view of ``cases[index]`` as its own document, keeping the file's line numbers."""
    prefix = ("cases", index)
    marks = {loc[2:]: line for loc, line in doc.marks.items() if loc[:2] == prefix}
    marks.setdefault((), doc.marks.get(prefix, 0))
    return YamlDoc(data, marks, doc.name)


def cases_from_doc(doc: YamlDoc) -> list[tuple[CaseBase, Path]]:
    """Validate every case of one parsed case file; each with the folder its paths are relative to."""
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or not data["cases"]:
        raise SpecError("expected a mapping with a non-empty list 'cases:'", where=doc.name)
    unknown = set(data) - {"cases", "defaults"}
    if unknown:
        name = sorted(unknown)[0]
        raise SpecError(f"unknown field '{name}' (a case file has 'cases' and 'defaults')",
                        where=doc.where((name,)), field=name)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise SpecError("expected a mapping of fields shared by every case", where=doc.where(("defaults",)),
                        field="defaults")
    base = Path(doc.name).parent
    out = []
    for i, raw in enumerate(data["cases"]):
        if not isinstance(raw, dict):
            raise SpecError("expected a mapping of case fields", where=doc.where(("cases", i)), field=f"cases[{i}]")
        merged = {**defaults, **raw}
        sub = _case_doc(doc, i, merged)
        kind = merged.get("kind")
        if kind not in KINDS:
            raise SpecError(f"unknown kind {kind!r} (one of {', '.join(sorted(KINDS))})",
                            where=sub.where(("kind",)), field=f"cases[{i}].kind")
        model = kind_module(kind).Case
        try:
            case = model.model_validate(merged)
        except ValidationError as exc:
            err = spec_error_from_validation(exc, sub, model)
            raise SpecError(err.message, where=err.where,
                            field=f"cases[{i}]" + (f".{err.field}" if err.field else "")) from None
        out.append((case, base))
    return out


def load_cases(paths: list[str | Path] | str | Path | None = None) -> list[tuple[CaseBase, Path]]:
    """Cases from files or folders of ``*.yaml`` (default: the bundled suite), in file order.

    Every YAML file loaded is a case file (designs and workloads that cases use live in
    subfolders); case names must be unique across the files. Each case comes with the
    folder its paths are relative to.
    """
    if paths is None:
        paths = [bundled_cases_dir()]
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.yaml")))
        elif p.exists():
            files.append(p)
        else:
            raise SpecError("file not found", where=str(p))
    cases: list[tuple[CaseBase, Path]] = []
    seen: dict[str, str] = {}
    for f in files:
        for case, base in cases_from_doc(read_yaml(f)):
            if case.name in seen:
                raise SpecError(f"case name '{case.name}' is also used in {seen[case.name]}", where=str(f))
            seen[case.name] = str(f)
            cases.append((case, base))
    if not cases:
        raise SpecError("no validation cases found", where=", ".join(map(str, paths)))
    return cases

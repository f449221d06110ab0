"""Safe YAML loading that remembers the line of every field, for error messages."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dse.errors import SpecError

Loc = tuple[Any, ...]


def _walk(node: yaml.Node, path: Loc, marks: dict[Loc, int]) -> None:
    marks[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            marks[path + (k,)] = key.start_mark.line + 1
            _walk(value, path + (k,), marks)
            marks[path + (k,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), marks)


class YamlDoc:
    """A parsed YAML file: its data (safe-loaded) and the line of each path in it."""

    def __init__(self, data: Any, marks: dict[Loc, int], name: str, node: yaml.Node | None = None):
        self.data = data
        self.marks = marks
        self.name = name
        self.node = node

    def where(self, loc: Loc) -> str:
        """'file:line' for the deepest part of ``loc`` that has a line."""
        loc = tuple(loc)
        while loc and loc not in self.marks:
            loc = loc[:-1]
        line = self.marks.get(loc)
        return f"{self.name}:{line}" if line else self.name


def parse_yaml_text(text: str, name: str) -> YamlDoc:
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = exc.problem or exc.context or "malformed YAML"
        raise SpecError(f"malformed YAML: {problem}", where=f"{name}{line}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", where=name) from None
    marks: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), marks)
    return YamlDoc(data, marks, name, node)


def read_yaml(path: str | Path) -> YamlDoc:
    p = Path(path)
    if not p.exists():
        raise SpecError("file not found", where=str(path))
    if p.is_dir():
        raise SpecError("is a directory, expected a YAML file", where=str(path))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read file: {exc}", where=str(path)) from None
    return parse_yaml_text(text, str(path))


_AT = "\x00at:"


def at(path: str, message: str) -> str:
    """Tag a model-level validation message with the field path it is about."""
    return f"{_AT}{path}\x00{message}"


def _parse_path(path: str) -> Loc:
    out: list[Any] = []
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


def dotted(loc: Loc) -> str:
    """('compute', 0, 'rows') -> 'compute[0].rows'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def spec_error_from_validation(exc: ValidationError, doc: YamlDoc, model: type | None = None) -> SpecError:
    """The first pydantic error as one SpecError with file, line and field path."""
    errors = exc.errors()
    # an unknown field usually explains the missing one next to it (a typo): report it first
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # pydantic puts discriminated-union tags in loc (e.g. 'systolic'); drop them
    loc = _strip_tags(loc, doc.data)
    kind = err["type"]
    if kind == "extra_forbidden":
        name = loc[-1] if loc else "?"
        msg = f"unknown field '{name}'"
        parent = _lookup(doc.data, loc[:-1])
        allowed = _allowed_fields(model, parent) if model is not None else []
        close = difflib.get_close_matches(str(name), allowed, n=3)
        if close:
            msg += f" (did you mean {', '.join(repr(c) for c in close)}?)"
        return SpecError(msg, where=doc.where(loc), field=dotted(loc))
    if kind == "missing":
        return SpecError("required field is missing", where=doc.where(loc[:-1]), field=dotted(loc))
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if msg.startswith(_AT):
        path, msg = msg[len(_AT):].split("\x00", 1)
        loc = loc + _parse_path(path)
    return SpecError(msg, where=doc.where(loc), field=dotted(loc) or None)


def _lookup(data: Any, loc: Loc) -> Any:
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def _strip_tags(loc: Loc, data: Any) -> Loc:
    out: list[Any] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and part not in cur and isinstance(part, str) and out and _looks_like_tag(part):
            continue
        out.append(part)
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            cur = None
    return tuple(out)


def _looks_like_tag(part: str) -> bool:
    return part in {"systolic", "vector", "imc"}


def _allowed_fields(model: type, parent: Any) -> list[str]:
    """Every field name anywhere in the model tree: good enough for 'did you mean'."""
    from typing import get_args

    from pydantic import BaseModel

    seen: set[type] = set()
    names: set[str] = set()

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp in seen:
                return
            seen.add(tp)
            for name, f in tp.model_fields.items():
                names.add(name)
                visit(f.annotation)
        for arg in get_args(tp):
            visit(arg)

    visit(model)
    if isinstance(parent, dict):
        names -= set(parent)  # a field already given is not what was meant
    return sorted(names)

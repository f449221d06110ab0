"""Safe, bounded and fast loading of YAML and JSON input files, with the line of
every field for error messages.

* YAML goes through libyaml's C loader (``yaml.CSafeLoader``) where PyYAML was built
  with it, JSON through :mod:`json`.
* Before anything is built, one pass over libyaml's events bounds the document:
  nesting depth (the C composer would overflow the C stack), the number of nodes
  that aliases expand to (a "billion laughs" file), recursive aliases, and
  repeated keys in a mapping (YAML would silently keep the last one). Each is a
  :class:`SpecError` naming the file and line.
* The node tree with line numbers is composed only when an error has to name the
  line of a field (:meth:`YamlDoc.where`).
"""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dse.errors import SpecError
from dse.paths import exists

Loc = tuple[Any, ...]

#: Deepest nesting of mappings and lists accepted (dse's files need fewer than 10 levels).
MAX_DEPTH = 64
#: Most values that aliases (``*name``) may add to a document once expanded (a "billion
#: laughs" file adds billions; dse's bundled files add none).
MAX_ALIAS_VALUES = 1_000_000
#: Longest plain scalar that looks like a number (Python refuses ints of over 4300 digits).
MAX_NUMBER_CHARS = 400
#: Largest input file read, in bytes.
MAX_FILE_BYTES = 200 * 2**20

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _walk(node: yaml.Node, path: Loc, marks: dict[Loc, int]) -> None:
    """Lines of every path under ``node``, iteratively (depth is bounded by check_events)."""
    todo = [(node, path)]
    while todo:
        node, path = todo.pop()
        marks.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = key.value if isinstance(key, yaml.ScalarNode) else "?"
                marks[path + (k,)] = key.start_mark.line + 1
                todo.append((value, path + (k,)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                todo.append((item, path + (i,)))


class YamlDoc:
    """A parsed input file: its data and, composed on demand, the line of each field."""

    def __init__(self, data: Any, name: str | dict, text: str | None = None, node: yaml.Node | None = None):
        self._marks: dict[Loc, int] | None = None
        if isinstance(name, dict):  # YamlDoc(data, {loc: line}, name): lines given outright
            self._marks, name, text = name, text, None
        self.data = data
        self.name = name
        self._text = text
        self._node = node

    @property
    def marks(self) -> dict[Loc, int]:
        """{loc: line} of every mapping key and list item (built on first use)."""
        if self._marks is None:
            self._marks = {}
            if self.node is not None:
                _walk(self.node, (), self._marks)
        return self._marks

    @property
    def node(self) -> yaml.Node | None:
        """The YAML node tree (with positions), composed the first time it is asked for."""
        if self._node is None and self._text is not None:
            try:
                self._node = yaml.compose(self._text, Loader=_Loader)
            except (yaml.YAMLError, RecursionError, ValueError):
                self._node = None
            self._text = None
        return self._node

    def line(self, loc: Loc) -> int | None:
        """1-based line of the deepest part of ``loc`` found (a mapping entry: its key's line)."""
        if self._marks is not None and self._node is None and self._text is None:
            while loc and loc not in self._marks:
                loc = loc[:-1]
            return self._marks.get(loc) or None
        node = self.node
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            nxt = None
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                        nxt, line = value, key.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                nxt = node.value[part]
                line = nxt.start_mark.line + 1
            if nxt is None:
                break
            node = nxt
        return line

    def where(self, loc: Loc) -> str:
        """'file:line' for the deepest part of ``loc`` that has a line."""
        line = self.line(tuple(loc))
        return f"{self.name}:{line}" if line else self.name


def _marked(exc: yaml.MarkedYAMLError, name: str) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    line = f":{mark.line + 1}" if mark else ""
    problem = exc.problem or exc.context or "malformed YAML"
    if "nesting depth" in problem:
        # libyaml 0.2.5+ stops its scanner at ~1,000 flow levels, before our own limit is
        # reached in the events: it is the same refusal, said the same way
        return SpecError(f"nested more than {MAX_DEPTH} levels deep", where=f"{name}{line}")
    return SpecError(f"malformed YAML: {problem}", where=f"{name}{line}")


def check_events(text: str, name: str) -> None:
    """Bound a YAML text before it is composed: depth, alias expansion, recursive aliases,
    repeated keys. One pass over libyaml's events; raises SpecError with the line."""
    # per open collection: [expanded size, anchor, {key: line} for a mapping else None,
    #                       next is a key, current key (mapping) or item count (list)]
    stack: list[list[Any]] = []
    sizes: dict[str, int] = {}
    open_anchors: set[str] = set()
    expanded = 0
    scalar, alias = yaml.ScalarEvent, yaml.AliasEvent
    starts = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)

    def fail(message: str, ev: yaml.Event, key: Any = None) -> SpecError:
        path = [e[4] if e[2] is not None else e[4] - 1 for e in stack[:-1]]
        field = dotted(tuple(path) + (key,)) if key is not None else None
        return SpecError(message, where=f"{name}:{ev.start_mark.line + 1}", field=field)

    def child(ev: yaml.Event) -> None:
        """Count a new item of the innermost collection; check a mapping's key."""
        top = stack[-1]
        if top[2] is None:
            top[4] += 1
            return
        if top[3]:
            if type(ev) is scalar and not (ev.value == "<<" and ev.implicit[0]):
                first = top[2].get(ev.value)
                if first is not None:
                    raise fail(f"duplicate key '{ev.value}' (first given on line {first}; "
                               f"YAML would keep only the last)", ev, ev.value)
                top[2][ev.value] = ev.start_mark.line + 1
            top[4] = ev.value if type(ev) is scalar else "?"
        top[3] = not top[3]

    for ev in yaml.parse(text, Loader=_Loader):
        cls = type(ev)
        if cls is scalar or cls is alias:
            if cls is alias:
                if ev.anchor in open_anchors:
                    raise fail(f"recursive alias *{ev.anchor} (refers to a value that contains it)", ev)
                size = sizes.get(ev.anchor, 1)  # an undefined alias is reported by the loader
                expanded += size
                if expanded > MAX_ALIAS_VALUES:
                    raise fail(f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (an alias bomb?)", ev)
            else:
                size = 1
                if ev.anchor:
                    sizes[ev.anchor] = 1
                if (len(ev.value) > MAX_NUMBER_CHARS and ev.implicit[0]
                        and ev.value.lstrip("+-.")[:1].isdigit()):
                    raise fail(f"a number of {len(ev.value):,} characters is out of range", ev)
            if stack:
                child(ev)
                stack[-1][0] += size
        elif isinstance(ev, starts):
            if stack:
                child(ev)
            if len(stack) >= MAX_DEPTH:
                raise fail(f"nested more than {MAX_DEPTH} levels deep", ev)
            stack.append([1, ev.anchor, {} if cls is yaml.MappingStartEvent else None, True, 0])
            if ev.anchor:
                open_anchors.add(ev.anchor)
        elif isinstance(ev, ends):
            size, anchor = stack.pop()[:2]
            if anchor:
                open_anchors.discard(anchor)
                sizes[anchor] = size
            if stack:
                stack[-1][0] += size


def parse_yaml_text(text: str, name: str) -> YamlDoc:
    """Check (:func:`check_events`) and safe-load a YAML text with libyaml's C loader."""
    try:
        check_events(text, name)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        raise _marked(exc, name) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {exc}", where=name) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise SpecError(f"cannot read a value: {str(exc).splitlines()[0]}", where=name) from None
    except RecursionError:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", where=name) from None
    return YamlDoc(data, name, text)


class _Duplicate(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate
    return out


class _NotFinite(ValueError):
    pass


def _no_constant(word: str) -> Any:
    raise _NotFinite(word)


def _scan(text: str, name: str) -> None:
    """The event scan of a JSON text, its libyaml errors said as SpecErrors with the line."""
    try:
        check_events(text, name)
    except yaml.MarkedYAMLError as exc:
        raise _marked(exc, name) from None


def parse_json_text(text: str, name: str) -> YamlDoc:
    """Load a JSON text with :mod:`json`; positions only once an error needs one."""
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise SpecError(f"invalid JSON: {exc.msg}", where=f"{name}:{exc.lineno}") from None
    except _Duplicate:
        parse_yaml_text(text, name)  # JSON is YAML: the event scan names the key and its line
        raise SpecError("duplicate key in an object", where=name) from None
    except _NotFinite as exc:
        word = str(exc)
        at_ = re.search(rf"(?<![\w\"]){word}(?![\w\"])", text)
        where = f"{name}:{text.count(chr(10), 0, at_.start()) + 1}" if at_ else name
        raise SpecError(f"{word} is not a number dse accepts (values must be finite)", where=where) from None
    except RecursionError:
        _scan(text, name)  # JSON is YAML: the event scan names the line
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", where=name) from None
    except ValueError as exc:
        long = re.search(rf"[0-9]{{{MAX_NUMBER_CHARS},}}", text)
        where = f"{name}:{text.count(chr(10), 0, long.start()) + 1}" if long else name
        problem = "a number is out of range" if long else str(exc).splitlines()[0]
        raise SpecError(f"cannot read a value: {problem}", where=where) from None
    if isinstance(data, (dict, list)) and _depth(data) > MAX_DEPTH:
        _scan(text, name)
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", where=name)
    return YamlDoc(data, name, text)


def _depth(data: Any) -> int:
    """Nesting depth of loaded JSON (iterative; stops once past MAX_DEPTH)."""
    deepest, level = 0, [data]
    while level and deepest <= MAX_DEPTH:
        deepest += 1
        nxt = []
        for item in level:
            values = item.values() if isinstance(item, dict) else item
            nxt.extend(v for v in values if isinstance(v, (dict, list)))
        level = nxt
    return deepest


def read_text(path: str | Path, what: str = "file") -> str:
    """A text file's contents, or SpecError (missing, a folder, too large, not UTF-8)."""
    p = Path(path)
    if not exists(p):
        raise SpecError("file not found", where=str(path))
    if p.is_dir():
        raise SpecError(f"is a directory, expected a {what}", where=str(path))
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(f"file of {size:,} bytes is larger than the {MAX_FILE_BYTES:,} accepted",
                            where=str(path))
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read file: {exc}", where=str(path)) from None


def read_yaml(path: str | Path) -> YamlDoc:
    """A YAML (or, by its suffix, JSON) file, checked and loaded."""
    text = read_text(path, "YAML file")
    if str(path).lower().endswith(".json"):
        return parse_json_text(text, str(path))
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
    if any(_is_type_tag(p) for p in err["loc"]):
        # a union (``dataflow: one | list``): the member whose shape was given explains best
        given = [e for e in errors if not e["type"].endswith(("_type", "literal_error"))]
        err = given[0] if given else err
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
    if kind == "union_tag_invalid":  # `kind: systolic_array`: say which kinds exist
        ctx = err.get("ctx") or {}
        key = str(ctx.get("discriminator", "kind")).strip("'")
        expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        close = difflib.get_close_matches(str(ctx.get("tag")), expected, n=1, cutoff=0.4)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return SpecError(f"'{ctx.get('tag')}' is not a {key}; expected one of {', '.join(expected)}{hint}",
                         where=doc.where(loc + (key,)), field=dotted(loc + (key,)))
    msg = err["msg"]
    if kind == "int_parsing_size":  # pydantic's words for a float past 2**63 given to an int field
        msg = f"{err.get('input')!r} is too large for a whole number"
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
        if (isinstance(part, str) and out and _looks_like_tag(part)
                and not (isinstance(cur, dict) and part in cur)):
            continue
        out.append(part)
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            cur = None
    return tuple(out)


def _looks_like_tag(part: str) -> bool:
    return part in {"systolic", "vector", "imc"} or _is_type_tag(part)


def _is_type_tag(part: Any) -> bool:
    """pydantic's name of a union member in a loc: 'list[...]', "literal['a','b']", 'int'."""
    return isinstance(part, str) and (part.endswith("]") and "[" in part
                                      or part in {"int", "float", "str", "bool", "none"})


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

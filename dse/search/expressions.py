"""Safe arithmetic over study parameters, for derived parameters (``cols: rows``,
``compute.mxu.area: 79 * rows * cols / 65536``).

Parsed with Python's ``ast`` and checked against a whitelist, never ``eval``-ed:
numbers, parameter names (or full dotted paths), ``+ - * / // % **``, unary
``-``/``+``, parentheses and the calls in ``FUNCTIONS``. Anything else is a
SpecError naming the construct.
"""
from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable

from dse.errors import SpecError

FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": min, "max": max, "abs": abs, "round": round,
    "ceil": math.ceil, "floor": math.floor, "sqrt": math.sqrt, "log2": math.log2,
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}

#: Exponents beyond this are refused at evaluation (2 ** 10 ** 10 would never finish).
MAX_EXPONENT = 1024

_NAMES = {
    ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operator", ast.IfExp: "a conditional expression", ast.Lambda: "a lambda",
    ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
    ast.ListComp: "a comprehension", ast.GeneratorExp: "a generator", ast.JoinedStr: "an f-string",
    ast.NamedExpr: "an assignment", ast.Starred: "unpacking", ast.Await: "await",
}


def _construct(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}"
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return f"the unary operator {type(node.op).__name__}"
    return _NAMES.get(type(node), type(node).__name__)


def _dotted(node: ast.AST) -> str | None:
    """'compute.mxu.rows' for an attribute chain of plain names, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


class Expression:
    """A checked arithmetic expression; ``names`` are the parameters it reads."""

    def __init__(self, text: str, tree: ast.expr, names: list[str]):
        self.text = text
        self._tree = tree
        self.names = names

    def evaluate(self, values: dict[str, Any]) -> float | int:
        """The value for these parameter values (keyed by the names in ``self.names``)."""
        return _eval(self._tree, values)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def parse_expression(text: str | int | float, known: set[str] | None = None,
                     *, where: str | None = None) -> Expression:
    """Parse and check ``text``; every name must be in ``known`` (when given)."""
    if isinstance(text, bool):
        raise SpecError(f"expected an arithmetic expression, got {text!r}", where=where)
    if isinstance(text, (int, float)):
        text = repr(text)
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"expected an arithmetic expression, got {text!r}", where=where)
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise SpecError(f"'{text}' is not an arithmetic expression (syntax error)", where=where) from None
    names: list[str] = []
    _check(tree, text, names, known, where)
    return Expression(text, tree, names)


def _check(node: ast.AST, text: str, names: list[str], known: set[str] | None, where: str | None) -> None:
    def refuse(what: str) -> SpecError:
        return SpecError(f"'{text}': {what} is not allowed in an expression (only numbers, parameter "
                         f"names, + - * / // % **, parentheses and {', '.join(FUNCTIONS)})", where=where)

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise refuse(_construct(node))
        return
    if isinstance(node, (ast.Name, ast.Attribute)):
        name = _dotted(node)
        if name is None:
            raise refuse(_construct(node))
        if known is not None and name not in known:
            import difflib

            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise SpecError(f"'{text}': '{name}' is not a parameter{hint}", where=where)
        if name not in names:
            names.append(name)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, names, known, where)
        _check(node.right, text, names, known, where)
        return
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, text, names, known, where)
        return
    if isinstance(node, ast.Call):
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn not in FUNCTIONS:
            raise refuse(f"calling {fn or _construct(node.func)}")
        if node.keywords or not node.args:
            raise refuse(f"{fn}() without positional arguments")
        for arg in node.args:
            _check(arg, text, names, known, where)
        return
    raise refuse(_construct(node))


def _eval(node: ast.AST, values: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        return values[_dotted(node)]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent {right} is too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_eval(a, values) for a in node.args))
    raise ValueError(f"unexpected node {type(node).__name__}")  # unreachable after _check

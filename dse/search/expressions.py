"""Safe arithmetic over study parameters, for derived parameters (``cols: rows``,
``compute.mxu.area: 79 * rows * cols / 65536``).

Parsed with Python's ``ast`` and checked against a whitelist, never ``eval``-ed:
numbers, parameter names (or full dotted paths), ``+ - * / // % **``, unary
``-``/``+``, parentheses and the calls in ``FUNCTIONS``. Anything else is a
SpecError naming the construct.

Evaluation is bounded in time as well as in size: an expression has at most ``MAX_STEPS``
nodes (checked when parsed), every value it holds is a float or an integer of at most
``MAX_INT_BITS`` bits, and every operation whose result could be larger (``**``, ``*``,
``round`` to many digits, a float power past the float range) is refused *before* it runs,
from the sizes of its operands. So an evaluation is at most ``MAX_STEPS`` operations on
256-bit numbers: microseconds, whatever the text (``((2**1000)**1000)**1000`` or ``9**9**9``
would otherwise run for minutes or exhaust memory).
"""
from __future__ import annotations

import ast
import functools
import math
import operator
from typing import Any, Callable

import numpy as np

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
#: Longest expression text, deepest nesting and largest integer (in bits) an expression may
#: reach: each result is a field of one design, far inside these.
MAX_CHARS = 1000
MAX_DEPTH = 100
MAX_INT_BITS = 256
#: Most nodes (numbers, names, operators, calls) in one expression: the operation budget.
MAX_STEPS = 500
#: log2 of the largest float (1.8e308): a float power past it is refused before it runs.
_FLOAT_LOG2_MAX = 1024

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
    if len(text) > MAX_CHARS:
        raise SpecError(f"an expression of {len(text):,} characters is too long (at most {MAX_CHARS:,})",
                        where=where)
    if _nesting(text) > MAX_DEPTH:
        raise SpecError(f"'{text[:40]}...' is nested too deeply (at most {MAX_DEPTH} levels)", where=where)
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        raise SpecError(f"'{text}' is not an arithmetic expression (syntax error)", where=where) from None
    except (RecursionError, MemoryError):
        raise SpecError(f"'{text[:40]}...' is nested too deeply", where=where) from None
    steps = sum(isinstance(n, ast.expr) for n in ast.walk(tree))
    if steps > MAX_STEPS:
        raise SpecError(f"'{text[:40]}...' has {steps:,} terms and operators (at most {MAX_STEPS:,})",
                        where=where)
    names: list[str] = []
    try:
        _check(tree, text, names, known, where, 0)
    except RecursionError:
        raise SpecError(f"'{text[:40]}...' is nested too deeply", where=where) from None
    return Expression(text, tree, names)


def _nesting(text: str) -> int:
    """Upper bound of the parse depth: open brackets plus runs of unary signs."""
    depth = deepest = run = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch in "+-~":
            run += 1
        elif not ch.isspace():
            run = 0
        deepest = max(deepest, depth + run)
    return deepest


def _check(node: ast.AST, text: str, names: list[str], known: set[str] | None, where: str | None,
           depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise SpecError(f"'{text[:40]}...' is nested too deeply (at most {MAX_DEPTH} levels)", where=where)

    def refuse(what: str) -> SpecError:
        return SpecError(f"'{text}': {what} is not allowed in an expression (only numbers, parameter "
                         f"names, + - * / // % **, parentheses and {', '.join(FUNCTIONS)})", where=where)

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise refuse(_construct(node))
        if isinstance(node.value, int) and node.value.bit_length() > MAX_INT_BITS:
            raise SpecError(f"'{text[:40]}': a constant of more than {MAX_INT_BITS} bits is out of range",
                            where=where)
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
        _check(node.left, text, names, known, where, depth + 1)
        _check(node.right, text, names, known, where, depth + 1)
        return
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, text, names, known, where, depth + 1)
        return
    if isinstance(node, ast.Call):
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn not in FUNCTIONS:
            raise refuse(f"calling {fn or _construct(node.func)}")
        if node.keywords or not node.args:
            raise refuse(f"{fn}() without positional arguments")
        for arg in node.args:
            _check(arg, text, names, known, where, depth + 1)
        return
    raise refuse(_construct(node))


def _eval(node: ast.AST, values: dict[str, Any]) -> Any:
    """Evaluate a checked tree; ints stay below MAX_INT_BITS, results are real and finite."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _bounded(values[_dotted(node)])
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values), _eval(node.right, values)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT:
                raise ValueError(f"exponent {_short(right)} is too large (at most {MAX_EXPONENT})")
            if isinstance(left, int) and isinstance(right, int) and right > 0 \
                    and (left.bit_length() - 1) * right > MAX_INT_BITS:
                raise ValueError(f"{_short(left)} ** {right} is out of range (more than {MAX_INT_BITS} bits)")
            if left and math.log2(abs(left)) * right >= _FLOAT_LOG2_MAX \
                    and not (isinstance(left, int) and isinstance(right, int) and right > 0):
                raise ValueError(f"{_short(left)} ** {right} is out of the float range")
        elif isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
            raise ValueError("a product is out of range")
        return _bounded(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        return _bounded(_UNARY[type(node.op)](_eval(node.operand, values)))
    if isinstance(node, ast.Call):
        args = [_eval(a, values) for a in node.args]
        if node.func.id == "round" and len(args) > 1 and abs(args[1]) > 400:
            raise ValueError("round() to more than 400 digits")
        return _bounded(FUNCTIONS[node.func.id](*args))
    raise ValueError(f"unexpected node {type(node).__name__}")  # unreachable after _check


def _short(v: Any) -> str:
    """A number for a message: ints of more than 20 digits as 2**N."""
    if isinstance(v, int) and abs(v) > 10**20:
        return f"{'-' if v < 0 else ''}2**{math.log2(abs(v)):.1f}"
    return repr(v)


def _bounded(v: Any) -> Any:
    """``v`` if it is a real, finite number with an integer part of at most MAX_INT_BITS bits."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        if v.bit_length() > MAX_INT_BITS:
            raise ValueError(f"an integer of more than {MAX_INT_BITS} bits is out of range")
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"the result is {v}, not a finite number")
        return v
    if isinstance(v, complex):
        raise ValueError("the result is a complex number (e.g. a fractional power of a negative number)")
    raise ValueError(f"the result {v!r} is not a number")


#: The functions of FUNCTIONS applied elementwise, for evaluate_arrays.
_ARRAY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": lambda *a: functools.reduce(np.minimum, a), "max": lambda *a: functools.reduce(np.maximum, a),
    "abs": np.abs, "round": np.round, "ceil": np.ceil, "floor": np.floor, "sqrt": np.sqrt, "log2": np.log2,
}


def evaluate_arrays(expr: Expression, values: dict[str, Any]) -> Any:
    """``expr`` over numpy arrays of parameter values (one element per design), elementwise;
    used to screen many designs at once (dse.search.screen)."""
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Name, ast.Attribute)):
            return np.asarray(values[_dotted(node)], dtype=float)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Call):
            return _ARRAY_FUNCTIONS[node.func.id](*(ev(a) for a in node.args))
        raise SpecError(f"'{expr.text}': cannot evaluate {_construct(node)}")

    with np.errstate(all="ignore"):
        return ev(expr._tree)

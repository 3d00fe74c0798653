"""A small, safe expression language: workflow conditions and templates, approval rules.

Expressions are parsed with Python's ``ast`` in ``eval`` mode and then checked against a
whitelist: literals, names, ``a.b`` and ``a["b"]`` lookups, slices, comparisons (including
``in``), ``and``/``or``/``not``, ``x if c else y``, arithmetic on numbers, ``+`` on text and
lists, and calls of the functions in ``FUNCTIONS``. Nothing is ever passed to ``eval``: the
tree is walked here, and lookups only read keys of dicts and items of lists, never Python
attributes, so no expression can reach an object's internals.

``true``, ``false`` and ``null`` may be written as in JSON. A lookup of something missing gives
``None`` (``steps.x.output`` of a step that was skipped, ``state.count`` before it is set), so
expressions like ``state.count or 0`` just work.
"""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MAX_LENGTH = 2000


class ExpressionError(ValueError):
    """An expression that cannot be parsed, is not allowed, or fails when evaluated."""


def to_text(value: Any) -> str:
    """How a value appears in text: strings as they are, ``None`` empty, data as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _contains(container: Any, item: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, str):
        return to_text(item) in container
    if isinstance(container, Mapping | list | tuple):
        try:
            return item in container
        except TypeError:  # an unhashable item in a mapping
            return False
    raise ExpressionError(f"contains() needs text, a list or an object, not {type(container).__name__}")


def _len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ExpressionError(f"len() needs text, a list or an object, not {type(value).__name__}")


def _text_fn(method: str) -> Callable[..., Any]:
    def call(value: Any, *args: Any) -> Any:
        return getattr(to_text(value), method)(*(to_text(a) for a in args))

    call.__name__ = method
    return call


def _number(kind: type) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return kind(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ExpressionError(f"{kind.__name__}() cannot convert {to_text(value)[:40]!r}") from None

    return convert


def _bounded(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except TypeError as exc:
            raise ExpressionError(f"{fn.__name__}(): {exc}") from None

    return call


# JSON spellings of the constants, since definitions are written in JSON.
CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "contains": _contains,
    "lower": _text_fn("lower"),
    "upper": _text_fn("upper"),
    "strip": _text_fn("strip"),
    "startswith": _text_fn("startswith"),
    "endswith": _text_fn("endswith"),
    "str": to_text,
    "int": _number(int),
    "float": _number(float),
    "bool": bool,
    "abs": _bounded(abs),
    "min": _bounded(min),
    "max": _bounded(max),
    "round": _bounded(round),
}

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda left, right: _contains(right, left),
    ast.NotIn: lambda left, right: not _contains(right, left),
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}

_ALLOWED_NODES: tuple[type, ...] = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Compare,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Call,
    ast.List,
    ast.Tuple,
    ast.IfExp,
    *_COMPARE,
    *_ARITHMETIC,
)

_DESCRIPTIONS: dict[type, str] = {
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Dict: "object literals",
    ast.Set: "set literals",
    ast.JoinedStr: "f-strings",
    ast.NamedExpr: "assignments",
    ast.Pow: "'**'",
    ast.Await: "await",
    ast.Starred: "'*' unpacking",
}


@dataclass(frozen=True)
class Expression:
    """A checked expression: evaluate it against a context of plain data (dicts, lists, text)."""

    source: str
    tree: ast.Expression
    names: frozenset[str]
    step_refs: frozenset[str]

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            return _Evaluator(context).visit(self.tree.body)
        except ExpressionError as exc:
            raise ExpressionError(f"{self.source!r}: {exc}") from None
        except (TypeError, ValueError, ArithmeticError, IndexError, KeyError) as exc:
            raise ExpressionError(f"{self.source!r}: {exc}") from None
        except RecursionError:
            raise ExpressionError(f"{self.source!r} is nested too deeply") from None


@lru_cache(maxsize=1024)
def compile_expression(source: str) -> Expression:
    """Parse and check an expression; raises ``ExpressionError`` saying what is wrong."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    text = source.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        hint = ""
        if "-" in text and "steps." in text:
            hint = " (a step name with '-' needs brackets: steps['my-step'].output)"
        raise ExpressionError(f"{text!r} is not a valid expression: {exc.msg}{hint}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(f"{text!r} is not a valid expression") from None
    names: set[str] = set()
    refs: set[str] = set()
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        _check_node(node, text)
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in CONSTANTS:
            names.add(node.id)
        ref = _step_reference(node)
        if ref is not None:
            refs.add(ref)
    return Expression(text, tree, frozenset(names), frozenset(refs))


def _check_node(node: ast.AST, text: str) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        what = _DESCRIPTIONS.get(type(node), type(node).__name__)
        raise ExpressionError(f"{text!r} uses {what}, which expressions do not allow")
    if isinstance(node, ast.Constant) and not (node.value is None or isinstance(node.value, str | int | float | bool)):
        raise ExpressionError(f"{text!r} uses a literal of type {type(node.value).__name__}")
    if isinstance(node, ast.Call):
        known = ", ".join(sorted(FUNCTIONS))
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"{text!r} may only call functions by name: {known}")
        if node.func.id not in FUNCTIONS:
            raise ExpressionError(f"{text!r} calls {node.func.id}(), which is not allowed; the functions are {known}")
        if node.keywords:
            raise ExpressionError(f"{text!r}: functions take no keyword arguments")


def _step_reference(node: ast.AST) -> str | None:
    """The step named by ``steps.NAME`` or ``steps["NAME"]``, if this node is one."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "steps":
        return node.attr
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "steps"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None


def _lookup(container: Any, key: Any) -> Any:
    """``a.b`` and ``a[b]``: keys of mappings, items of lists and text; anything else is None."""
    if isinstance(container, Mapping):
        try:
            return container.get(key)
        except TypeError:
            return None
    if isinstance(container, list | tuple | str) and isinstance(key, int) and not isinstance(key, bool):
        return container[key] if -len(container) <= key < len(container) else None
    return None


class _Evaluator:
    __slots__ = ("context",)

    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:  # compile_expression already refused it; defence in depth
            raise ExpressionError(f"{type(node).__name__} is not allowed")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        return self.context.get(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        return _lookup(self.visit(node.value), node.attr)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        value = self.visit(node.value)
        if isinstance(node.slice, ast.Slice):
            if not isinstance(value, list | tuple | str):
                return None
            parts = [
                None if p is None else self.visit(p) for p in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            if any(p is not None and not isinstance(p, int) for p in parts) or parts[2] == 0:
                raise ExpressionError("slice bounds must be whole numbers (and the step not 0)")
            return value[slice(*parts)]
        return _lookup(value, self.visit(node.slice))

    def visit_List(self, node: ast.List) -> Any:
        return [self.visit(e) for e in node.elts]

    def visit_Tuple(self, node: ast.Tuple) -> Any:
        return [self.visit(e) for e in node.elts]

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.visit(operand)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if not _is_number(value):
            raise ExpressionError(f"a sign needs a number, not {type(value).__name__}")
        return -value if isinstance(node.op, ast.USub) else value

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        if _is_number(left) and _is_number(right):
            return _ARITHMETIC[type(node.op)](left, right)
        same = type(left) is type(right) and isinstance(left, str | list)
        if isinstance(node.op, ast.Add) and same:
            return left + right
        raise ExpressionError(
            f"cannot apply {type(node.op).__name__.lower()} to {type(left).__name__} and {type(right).__name__}"
        )

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comparator)
            try:
                ok = _COMPARE[type(op)](left, right)
            except TypeError:
                raise ExpressionError(f"cannot compare {type(left).__name__} with {type(right).__name__}") from None
            if not ok:
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        return FUNCTIONS[node.func.id](*(self.visit(a) for a in node.args))

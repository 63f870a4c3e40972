"""A small, safe condition language: parsed with ``ast``, compiled to closures, never eval()'d."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CompiledExpr", "ExprError", "Getter", "Resolver", "compile_expr"]

Getter = Callable[[], Any]
# A signal path ("alarms", "temp", "ACTIVE") or ("alarms", "list", 3, "Q") → a value getter.
Resolver = Callable[[tuple[str | int, ...]], Getter]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
# No power operator: `10 ** 10 ** 10` would hang the bench instead of failing it.
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max}
_MAX_LENGTH = 1000


class ExprError(ValueError):
    """An expression that is not part of the language, or names an unknown signal."""


@dataclass
class CompiledExpr:
    """The evaluator plus the signals it reads (dotted names → getters, for reports)."""

    source: str
    evaluate: Getter
    signals: dict[str, Getter] = field(default_factory=dict)


def signal_name(parts: tuple[str | int, ...]) -> str:
    """('alarms', 'list', 3, 'Q') → 'alarms.list[3].Q'."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def compile_expr(source: str, resolve: Resolver) -> CompiledExpr:
    """Compile ``source`` with signals looked up through ``resolve`` (which raises ExprError)."""
    if len(source) > _MAX_LENGTH:
        raise ExprError(f"expression longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error in {source!r}: {exc.msg}") from None
    signals: dict[str, Getter] = {}
    fn = _Compiler(resolve, signals).node(tree.body)
    return CompiledExpr(source, fn, signals)


class _Compiler:
    def __init__(self, resolve: Resolver, signals: dict[str, Getter]) -> None:
        self.resolve = resolve
        self.signals = signals

    def node(self, n: ast.AST) -> Getter:
        if isinstance(n, ast.Constant):
            return self._constant(n)
        if isinstance(n, ast.Name | ast.Attribute | ast.Subscript):
            return self._signal(n)
        if isinstance(n, ast.BoolOp):
            return self._boolop(n)
        if isinstance(n, ast.UnaryOp) and type(n.op) in _UNARY:
            op1, arg = _UNARY[type(n.op)], self.node(n.operand)
            return lambda: op1(arg())
        if isinstance(n, ast.BinOp) and type(n.op) in _BINARY:
            op2, left, right = _BINARY[type(n.op)], self.node(n.left), self.node(n.right)
            return lambda: op2(left(), right())
        if isinstance(n, ast.Compare):
            return self._compare(n)
        if isinstance(n, ast.Call):
            return self._call(n)
        raise ExprError(f"{ast.unparse(n)!r}: {type(n).__name__} is not allowed here")

    @staticmethod
    def _constant(n: ast.Constant) -> Getter:
        value = n.value
        if not isinstance(value, bool | int | float | str):
            raise ExprError(f"constant {value!r} is not a number, string or boolean")
        return lambda: value

    def _signal(self, n: ast.expr) -> Getter:
        parts = _path(n)
        name = signal_name(parts)
        getter = self.signals.get(name)
        if getter is None:
            getter = self.signals[name] = self.resolve(parts)
        return getter

    def _boolop(self, n: ast.BoolOp) -> Getter:
        values = [self.node(v) for v in n.values]
        if isinstance(n.op, ast.And):
            return lambda: all(v() for v in values)
        return lambda: any(v() for v in values)

    def _compare(self, n: ast.Compare) -> Getter:
        ops = []
        for op in n.ops:
            if type(op) not in _COMPARE:
                raise ExprError(f"{ast.unparse(n)!r}: operator {type(op).__name__} not allowed")
            ops.append(_COMPARE[type(op)])
        terms = [self.node(n.left), *(self.node(c) for c in n.comparators)]

        def compare() -> bool:  # chained, as Python: a < b < c
            left = terms[0]()
            for op, term in zip(ops, terms[1:], strict=True):
                right = term()
                if not op(left, right):
                    return False
                left = right
            return True

        return compare

    def _call(self, n: ast.Call) -> Getter:
        fname = n.func.id if isinstance(n.func, ast.Name) else ""
        fn = _FUNCTIONS.get(fname)
        if fn is None or n.keywords or any(isinstance(a, ast.Starred) for a in n.args):
            allowed = ", ".join(f"{f}(...)" for f in _FUNCTIONS)
            raise ExprError(f"{ast.unparse(n)!r}: only the functions {allowed} are allowed")
        args = [self.node(a) for a in n.args]
        if not args:
            raise ExprError(f"{ast.unparse(n)!r}: needs an argument")
        return lambda: fn(*(a() for a in args))


def _path(n: ast.expr) -> tuple[str | int, ...]:
    """A signal reference as its path parts; anything but names, .attr and [const] is refused."""
    if isinstance(n, ast.Name):
        return (n.id,)
    if isinstance(n, ast.Attribute):
        return (*_path(n.value), n.attr)
    if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant):
        key = n.slice.value
        if isinstance(key, int) and not isinstance(key, bool):
            return (*_path(n.value), key)
    raise ExprError(f"{ast.unparse(n)!r} is not a signal name")


def compile_signal(text: str, resolve: Resolver) -> tuple[str, Getter]:
    """A single signal reference (as a Bound names it) → its canonical name and getter."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"{text!r} is not a signal name") from None
    parts = _path(tree.body)
    return signal_name(parts), resolve(parts)

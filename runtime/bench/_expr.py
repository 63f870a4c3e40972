"""A small, safe condition language: a checked ``ast`` rebuilt into one Python function."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CompiledExpr", "ExprError", "Getter", "Resolver", "compile_expr"]

Getter = Callable[[], Any]
# A signal path ("alarms", "temp", "ACTIVE") or ("alarms", "list", 3, "Q") → a value getter.
Resolver = Callable[[tuple[str | int, ...]], Getter]

_COMPARE: frozenset[type[ast.cmpop]] = frozenset(
    {ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE}
)
# No power operator: `10 ** 10 ** 10` would hang the bench instead of failing it.
_BINARY: frozenset[type[ast.operator]] = frozenset(
    {ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod}
)
_UNARY: frozenset[type[ast.unaryop]] = frozenset({ast.Not, ast.USub, ast.UAdd})
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


def compile_expr(source: str, resolve: Resolver, *, as_bool: bool = False) -> CompiledExpr:
    """Compile ``source`` with signals looked up through ``resolve`` (which raises ExprError).

    ``as_bool``: the compiled function returns ``bool(value)``, for conditions.

    The parsed tree is checked node by node and rebuilt from the allowed nodes only: every
    signal becomes a call of its getter, so the code has no names, attributes or builtins of
    its own. Compiling that tree to one function makes a check cost a single call per cycle
    (it is sampled every cycle of a 14-day bench run), not one closure call per node.
    """
    if len(source) > _MAX_LENGTH:
        raise ExprError(f"expression longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error in {source!r}: {exc.msg}") from None
    signals: dict[str, Getter] = {}
    compiler = _Compiler(resolve, signals)
    body = compiler.node(tree.body)
    if as_bool:  # a condition: the function returns its truth, no wrapper call needed
        body = ast.Call(_name("_bool"), [body], [])
    no_args = ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])
    code = compile(
        ast.fix_missing_locations(ast.Expression(ast.Lambda(no_args, body))),
        f"<condition {source!r}>",
        "eval",
    )
    namespace: dict[str, Any] = {"__builtins__": {}, "_bool": bool, **_FUNCTIONS}
    namespace.update(compiler.names)
    return CompiledExpr(source, eval(code, namespace), signals)  # the checked tree only


def _name(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


class _Compiler:
    """Checks each node against the language and returns its rebuilt, allowed-only copy."""

    def __init__(self, resolve: Resolver, signals: dict[str, Getter]) -> None:
        self.resolve = resolve
        self.signals = signals
        self.names: dict[str, Getter] = {}  # _s0, _s1, ... → getter, as the code calls them
        self._by_signal: dict[str, str] = {}

    def node(self, n: ast.AST) -> ast.expr:
        if isinstance(n, ast.Constant):
            return self._constant(n)
        if isinstance(n, ast.Name | ast.Attribute | ast.Subscript):
            return self._signal(n)
        if isinstance(n, ast.BoolOp):
            # all()/any() semantics: short-circuit, and the result is a bool, not an operand
            values = [self.node(v) for v in n.values]
            op = ast.And() if isinstance(n.op, ast.And) else ast.Or()
            return ast.Call(_name("_bool"), [ast.BoolOp(op, values)], [])
        if isinstance(n, ast.UnaryOp) and type(n.op) in _UNARY:
            return ast.UnaryOp(type(n.op)(), self.node(n.operand))
        if isinstance(n, ast.BinOp) and type(n.op) in _BINARY:
            return ast.BinOp(self.node(n.left), type(n.op)(), self.node(n.right))
        if isinstance(n, ast.Compare):
            return self._compare(n)
        if isinstance(n, ast.Call):
            return self._call(n)
        raise ExprError(f"{ast.unparse(n)!r}: {type(n).__name__} is not allowed here")

    @staticmethod
    def _constant(n: ast.Constant) -> ast.expr:
        value = n.value
        if not isinstance(value, bool | int | float | str):
            raise ExprError(f"constant {value!r} is not a number, string or boolean")
        return ast.Constant(value)

    def _signal(self, n: ast.expr) -> ast.expr:
        parts = _path(n)
        name = signal_name(parts)
        if name not in self.signals:
            self.signals[name] = self.resolve(parts)
        ident = self._by_signal.get(name)
        if ident is None:
            ident = self._by_signal[name] = f"_s{len(self._by_signal)}"
            self.names[ident] = self.signals[name]
        return ast.Call(_name(ident), [], [])

    def _compare(self, n: ast.Compare) -> ast.expr:
        for op in n.ops:
            if type(op) not in _COMPARE:
                raise ExprError(f"{ast.unparse(n)!r}: operator {type(op).__name__} not allowed")
        return ast.Compare(
            self.node(n.left), [type(op)() for op in n.ops], [self.node(c) for c in n.comparators]
        )

    def _call(self, n: ast.Call) -> ast.expr:
        fname = n.func.id if isinstance(n.func, ast.Name) else ""
        if fname not in _FUNCTIONS or n.keywords or any(isinstance(a, ast.Starred) for a in n.args):
            allowed = ", ".join(f"{f}(...)" for f in _FUNCTIONS)
            raise ExprError(f"{ast.unparse(n)!r}: only the functions {allowed} are allowed")
        if not n.args:
            raise ExprError(f"{ast.unparse(n)!r}: needs an argument")
        return ast.Call(_name(fname), [self.node(a) for a in n.args], [])


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

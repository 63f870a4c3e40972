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
_MAX_DEPTH = 64  # AST levels: a real condition has about ten; the compiler recurses per level
MAX_TEXT = 10_000  # characters a condition may build by repeating text ("x" * n)
_DIVISIONS = (ast.Div, ast.FloorDiv, ast.Mod)
# Nodes whose value is a number (or bool), or a TypeError: never text, so `*` on two of them
# needs no size guard. Signals and min()/max() can be text.
_NUMERIC_CALLS = frozenset({"abs", "_bool"})


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
    tree = _parse(source)
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
    namespace: dict[str, Any] = {"__builtins__": {}, **_HELPERS, **_FUNCTIONS}
    namespace.update(compiler.names)
    return CompiledExpr(source, eval(code, namespace), signals)  # the checked tree only


def _parse(source: str) -> ast.Expression:
    """Parse with the length and nesting bounded, so no later step can exhaust the stack."""
    if len(source) > _MAX_LENGTH:
        raise ExprError(f"expression longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error in {source!r}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:  # ValueError: a NUL byte
        raise ExprError(f"cannot parse {source[:60]!r}: {type(exc).__name__}") from None
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:  # iterative: the depth check itself must not recurse
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ExprError(
                f"expression nested more than {_MAX_DEPTH} levels deep; split the condition"
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def _too_long(text: str, times: object) -> bool:
    return isinstance(times, int) and len(text) * times > MAX_TEXT


def _mul(a: Any, b: Any) -> Any:
    """``a * b``, refusing a text repetition longer than MAX_TEXT before it is built."""
    if (type(a) is str and _too_long(a, b)) or (type(b) is str and _too_long(b, a)):
        size = len(a if type(a) is str else b) * (b if type(a) is str else a)
        raise ExprError(f"text repetition of {size:,} characters (at most {MAX_TEXT:,})")
    return a * b


def _mod(a: Any, b: Any) -> Any:
    """``a % b`` on numbers; '%' on text would be printf formatting, not part of the language."""
    if isinstance(a, str):
        raise ExprError("'%' on text (string formatting) is not allowed")
    return a % b


_HELPERS: dict[str, Callable[..., Any]] = {"_bool": bool, "_mul": _mul, "_mod": _mod}


def _name(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _numeric(n: ast.expr) -> bool:
    """True when ``n`` can only evaluate to a number or bool (or raise), never to text."""
    if isinstance(n, ast.Constant):
        return not isinstance(n.value, str)
    if isinstance(n, ast.UnaryOp | ast.Compare):
        return True
    if isinstance(n, ast.BinOp):
        if isinstance(n.op, ast.Sub | ast.Div | ast.FloorDiv):
            return True  # text - text, text / x, text // x are TypeErrors
        return _numeric(n.left) and _numeric(n.right)
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
        return n.func.id in _NUMERIC_CALLS
    return False


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
            operand = self.node(n.operand)
            if isinstance(operand, ast.Constant):  # -1, not 0: constants, checked now
                return ast.Constant(_fold_unary(n, operand.value))
            return ast.UnaryOp(type(n.op)(), operand)
        if isinstance(n, ast.BinOp) and type(n.op) in _BINARY:
            return self._binary(n)
        if isinstance(n, ast.Compare):
            return self._compare(n)
        if isinstance(n, ast.Call):
            return self._call(n)
        raise ExprError(f"{ast.unparse(n)!r}: {type(n).__name__} is not allowed here")

    def _binary(self, n: ast.BinOp) -> ast.expr:
        """Arithmetic: constants folded and checked now (``"x" * 5000000000``, ``1 / 0`` are
        refused here); repetition and '%' that may meet text at run time are guarded."""
        left, right = self.node(n.left), self.node(n.right)
        op = n.op
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            return ast.Constant(_fold(n, op, left.value, right.value))
        if isinstance(op, _DIVISIONS) and isinstance(right, ast.Constant) and right.value == 0:
            raise ExprError(f"{ast.unparse(n)!r}: division by zero")
        if isinstance(op, ast.Mod) and isinstance(left, ast.Constant):
            raise ExprError(f"{ast.unparse(n)!r}: '%' on text (string formatting) is not allowed")
        if isinstance(op, ast.Mult) and not (_numeric(left) and _numeric(right)):
            return ast.Call(_name("_mul"), [left, right], [])
        if isinstance(op, ast.Mod) and not _numeric(left):
            return ast.Call(_name("_mod"), [left, right], [])
        return ast.BinOp(left, type(op)(), right)

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


_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: _mul,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: _mod,
}


def _fold(n: ast.BinOp, op: ast.operator, a: Any, b: Any) -> Any:
    """The value of an operation on two constants, or ExprError saying why it has none."""
    try:
        return _OPS[type(op)](a, b)
    except ExprError as exc:
        raise ExprError(f"{ast.unparse(n)!r}: {exc}") from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise ExprError(f"{ast.unparse(n)!r}: {type(exc).__name__}: {exc}") from None


def _fold_unary(n: ast.UnaryOp, value: Any) -> Any:
    try:
        if isinstance(n.op, ast.Not):
            return not value
        return -value if isinstance(n.op, ast.USub) else +value
    except TypeError as exc:
        raise ExprError(f"{ast.unparse(n)!r}: {exc}") from None


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
    parts = _path(_parse(text).body)
    return signal_name(parts), resolve(parts)

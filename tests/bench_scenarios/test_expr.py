"""The condition language: Python's semantics on the allowed nodes, nothing else reachable."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.bench._expr import ExprError, compile_expr

VALUES: dict[str, Any] = {"a": 2.0, "b": 0.0, "c": 5.0, "s": "GROW", "unit.x": -3.0}


def _resolve(parts: tuple[str | int, ...]) -> Any:
    name = ".".join(str(p) for p in parts)
    if name not in VALUES:
        raise ExprError(f"unknown signal {name!r}")
    return lambda: VALUES[name]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a < c < 10", True),
        ("b < a < 1", False),
        ("abs(unit.x) == 3", True),
        ("min(a, c) + max(a, c) * 2", 12.0),
        ("a and c", True),  # a bool, as all() gives, not the last operand
        ("b or 0", False),
        ("not b and s == 'GROW'", True),
        ("-a // 3 + c % 3", 1.0),
        ("a / c", 0.4),
    ],
)
def test_expressions_evaluate_as_python_does(source: str, expected: object) -> None:
    expr = compile_expr(source, _resolve)
    got = expr.evaluate()
    assert got == expected and type(got) is type(expected)


def test_signals_are_read_live_and_listed() -> None:
    expr = compile_expr("a + a + unit.x", _resolve)
    assert sorted(expr.signals) == ["a", "unit.x"]
    VALUES["a"] = 10.0
    try:
        assert expr.evaluate() == 17.0
    finally:
        VALUES["a"] = 2.0


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "a.__class__",
        "(1).__class__",
        "[x for x in a]",
        "a ** 2",
        "lambda: 1",
        "abs(a, key=1)",
        "open('x')",
        "_bool(a)",
        "a if b else c",
        "a in c",
    ],
)
def test_anything_outside_the_language_is_refused(source: str) -> None:
    with pytest.raises(ExprError):
        compile_expr(source, _resolve)


def test_division_by_zero_raises_at_evaluation() -> None:
    with pytest.raises(ZeroDivisionError):
        compile_expr("a / b", _resolve).evaluate()

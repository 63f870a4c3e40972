"""The three-way merge rules, one row per case: old initial, running, new initial → outcome."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runtime.core.manifest import ParameterSpec
from runtime.state._merge import MISSING, Plan, changed_by, decide, merge, migrated, same

NAN = math.nan

# old initial, running, new initial, prefer → outcome, value, unresolved
ROWS: list[tuple[Any, Any, Any, Any, str, Any, bool]] = [
    # initial unchanged: the running value stays, whatever it is
    (20.0, 20.0, 20.0, None, "kept", 20.0, False),
    (20.0, 31.5, 20.0, None, "kept", 31.5, False),
    (20.0, 31.5, 20.0, "new", "kept", 31.5, False),
    ("FILL", "GROW", "FILL", None, "kept", "GROW", False),
    ([False] * 3, [True, False, True], [False] * 3, None, "kept", [True, False, True], False),
    (NAN, 1.0, NAN, None, "kept", 1.0, False),
    # ... converted losslessly when the new version types it anew
    (0, 7, 0.0, None, "kept", 7.0, False),
    (0.0, 3.0, 0, None, "kept", 3, False),
    (False, True, 0, None, "kept", 1, False),
    ((1, 2), (3, 4), [1, 2], None, "kept", [3, 4], False),
    # initial changed by the new version, running still the old initial: the new initial
    (20.0, 20.0, 25.0, None, "new_value", 25.0, False),
    (20.0, 20.0, 25.0, "running", "new_value", 25.0, False),
    ("batch", "batch", 0, None, "new_value", 0, False),  # even with a new type
    (False, False, True, None, "new_value", True, False),
    # initial changed and running changed at run time: a conflict
    (37.0, 36.5, 38.0, None, "conflict", 36.5, True),
    (37.0, 36.5, 38.0, "running", "conflict", 36.5, False),
    (37.0, 36.5, 38.0, "new", "conflict", 38.0, False),
    (0, 12, 1.0, None, "conflict", 12.0, True),  # kept, converted
    # a retyped initial (False → 0) is not a changed one; False → 1 is
    (False, False, 0, None, "kept", 0, False),
    (False, False, 1, None, "new_value", 1, False),
    # added and removed
    (MISSING, MISSING, 5.0, None, "added", 5.0, False),
    (MISSING, 4.0, MISSING, None, "dropped", None, False),
    (3.0, 4.0, MISSING, "new", "dropped", None, False),
    # an old file recorded no initial: the running value is kept
    (MISSING, 9.0, 5.0, None, "kept", 9.0, False),
    # a lossy type change is refused ...
    (0, 10, False, None, "refused", None, False),
    (0.0, 2.5, 0, None, "refused", None, False),
    ("x", "y", 1, None, "refused", None, False),
    # ... also in a conflict kept by preference, but not when the new initial wins
    (0, 10, "ten", "running", "refused", None, False),
    (0, 10, "ten", "new", "conflict", "ten", False),
]


@pytest.mark.parametrize(
    ("old", "running", "new", "prefer", "outcome", "value", "unresolved"),
    ROWS,
    ids=[f"{r[4]}-{i}" for i, r in enumerate(ROWS)],
)
def test_rule(
    old: Any, running: Any, new: Any, prefer: Any, outcome: str, value: Any, unresolved: bool
) -> None:
    d = decide("p.x", old, running, new, prefer=prefer)
    assert d.outcome == outcome, d
    assert d.unresolved is unresolved
    if outcome not in ("dropped", "refused"):
        assert d.value == value and type(d.value) is type(value)
    if outcome == "refused":
        assert "cannot become" in d.note and "migrate(old_version, state)" in d.note


def _spec(**kw: Any) -> ParameterSpec:
    return ParameterSpec.model_validate({"name": "temp_sp", "type": "REAL"} | kw)


# parameters: old default, running, new spec, prefer → outcome, value
PARAM_ROWS: list[tuple[Any, Any, dict[str, Any], Any, str, Any]] = [
    (37.0, 37.0, {"default": 38.0, "min": 30, "max": 40}, None, "new_value", 38.0),
    (37.0, 39.0, {"default": 38.0, "min": 30, "max": 40}, None, "conflict", 39.0),
    (37.0, 39.0, {"default": 37.0, "min": 30, "max": 38}, None, "refused", None),
    (37.0, 39.0, {"default": 37.0, "min": 30, "max": 38}, "running", "refused", None),
    (37.0, 39.0, {"default": 37.0, "min": 30, "max": 38}, "new", "kept", 37.0),
    (MISSING, MISSING, {"default": 1.5}, None, "added", 1.5),
]


@pytest.mark.parametrize(("old", "running", "spec", "prefer", "outcome", "value"), PARAM_ROWS)
def test_parameter_rule(
    old: Any, running: Any, spec: dict[str, Any], prefer: Any, outcome: str, value: Any
) -> None:
    s = _spec(**spec)
    d = decide("parameter:temp_sp", old, running, s.check(s.default), prefer=prefer, check=s.check)
    assert (d.outcome, d.value) == (outcome, value), d
    if outcome == "refused":
        assert "above max 38" in d.note
    if prefer == "new" and old is not MISSING and running != d.value:
        assert "reset to the new default" in d.note


def test_plan_counts_problems_and_strict() -> None:
    plan = merge(
        {"a": 1, "b": 2.0, "c": "x", "gone": 0, "d": 4},
        {"a": 1, "b": 5.0, "c": "x", "gone": 3, "d": 4},
        {"a": 1, "b": 3.0, "c": "y", "new": [0, 0], "d": 4},
    )
    assert [d.path for d in plan.decisions] == ["a", "b", "c", "new", "d", "gone"]
    counts = plan.counts()
    assert (counts["kept"], counts["conflict"], counts["new_value"]) == (2, 1, 1)
    assert (counts["added"], counts["dropped"], counts["refused"]) == (1, 1, 0)
    assert counts["unresolved"] == 1 and plan.ok
    strict = Plan(plan.decisions, strict=True)
    assert not strict.ok
    assert strict.problems() == [
        "b: unresolved conflict (old initial 2.0, running 5.0, new initial 3.0); choose with "
        "prefer new|running"
    ]
    summary = plan.summary()
    assert {c["path"] for c in summary["changes"]} == {"b", "c", "new", "gone"}
    lines = plan.lines()
    assert lines[1].startswith("conflict (unresolved)") and "b = 5.0" in lines[1]


def test_migrated_values_are_taken_as_they_are_or_refused() -> None:
    source = {"m.total": 2.5, "m.count": 3}
    result = {"m.sum": 2.5, "m.count": 300}
    assert changed_by(source, result) == {"m.sum", "m.count"}
    plan = merge(
        {"m.sum": 0.0, "m.count": 0},
        result,
        {"m.sum": 0.0, "m.count": 0.0},
        migrated_paths=changed_by(source, result),
    )
    assert [(d.outcome, d.value) for d in plan.decisions] == [
        ("migrated", 2.5),
        ("migrated", 300.0),
    ]
    assert migrated("m.flag", 2.5, False).outcome == "refused"


def test_same_treats_nan_and_truth_values_as_engineers_do() -> None:
    assert same(NAN, NAN) and same(1, 1.0) and same([1, 2], [1, 2])
    assert not same(True, 1) and not same(0, False) and not same(NAN, 0.0)

"""Leaves of an app's state (from its InstanceTree): select, read, convert and transfer them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from runtime.core._instances import Accessor
from runtime.core._leaves import copy_value, is_clock

__all__ = ["Accessor", "assign", "clock_paths", "convert", "copy_pairs", "read", "select"]


def select(all_leaves: Mapping[str, Accessor], prefix: str) -> dict[str, Accessor]:
    """The leaves named by ``prefix``: the variable itself or everything inside a block/list."""
    return {
        p: acc
        for p, acc in all_leaves.items()
        if p == prefix or p.startswith(prefix + ".") or p.startswith(prefix + "[")
    }


def clock_paths(accessors: Mapping[str, Accessor]) -> set[str]:
    """The leaves among ``accessors`` that hold app-time stamps (``CLOCK_VARS``)."""
    return {path for path, (owner, attr) in accessors.items() if is_clock(owner, attr)}


def read(accessors: Mapping[str, Accessor]) -> dict[str, Any]:
    """Current values of the given leaves, detached; cheap enough to run between cycles."""
    return {path: copy_value(getattr(owner, attr)) for path, (owner, attr) in accessors.items()}


def convert(value: Any, like: Any) -> tuple[Any, bool]:
    """``value`` fitted to a variable whose current value is ``like``; (result, converted?).

    Only lossless conversions are made (BOOL→INT, INT→REAL, integral REAL→INT, list↔tuple);
    anything else raises TypeError saying what could not become what.
    """
    if like is None:  # an untyped slot (initial None) takes any value
        return value, False
    lt, vt = type(like), type(value)
    if vt is lt:
        return value, False
    if lt is bool or (vt is bool and lt not in (int, float)):  # never guess a truth value
        raise TypeError(f"{_describe(value)} cannot become {_describe(like)}")
    if lt is float and vt in (int, bool):
        return float(value), True
    if lt is int and vt is bool:
        return int(value), True
    if lt is int and vt is float and math.isfinite(value) and value.is_integer():
        return int(value), True
    if lt in (list, tuple) and vt in (list, tuple):
        return lt(value), True
    if isinstance(value, lt) and vt is not bool:  # e.g. a StrEnum member into a str slot
        return value, False
    raise TypeError(f"{_describe(value)} cannot become {_describe(like)}")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


Pair = tuple[str, object, str, object, str, Any]  # path, source owner/attr, target owner/attr, like


def copy_pairs(pairs: Iterable[Pair]) -> list[str]:
    """Copy values along precomputed pairs (the cheap part left for the scan thread); returns
    ``"path: why"`` for every value that cannot be converted losslessly.

    Targets are instances nobody runs yet, so a refused value leaves nothing half-done that
    matters: the caller discards them.
    """
    refused = []
    for path, owner, attr, t_owner, t_attr, like in pairs:
        value = getattr(owner, attr)
        if like is not None and type(value) is not type(like):
            try:
                value, _ = convert(value, like)
            except TypeError as exc:
                refused.append(f"{path}: {exc}")
                continue
        setattr(t_owner, t_attr, copy_value(value))
    return refused


def assign(assignments: Iterable[tuple[object, str, Any]]) -> None:
    """Write planned values (each detached, so old and new instances never share a list)."""
    for owner, attr, value in assignments:
        setattr(owner, attr, copy_value(value))

"""App-time stamps across runtimes: stored as ages, re-based on the app time of the loader.

App time restarts at 0 in every runtime, so a timer's ``START_NS`` or a phase's ``SINCE_NS``
taken in one runtime means nothing in the next. Blocks (and programs) declare such variables
in ``CLOCK_VARS``; whenever state leaves its time base (a retain file) they are written as
ages (capture time − stamp), and turned back into stamps (load time − age) where it is
loaded, so an elapsed time continues where it was: a phase 3599 s in its state is 3599 s in
it after a warm restart. A snapshot carries its app time and restores it (the time base
continues), so it needs none of this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runtime.state._tree import Accessor

Stamp = int | list[int]


def shift(value: Any, origin: int) -> Any:
    """``origin − value`` for a stamp or a list of stamps (ages ↔ stamps, both ways)."""
    if isinstance(value, list | tuple):
        return [origin - int(v) for v in value]
    return origin - int(value)


def to_ages(values: Mapping[str, Any], clock: Iterable[str], now_ns: int) -> dict[str, Any]:
    """The clock variables among ``values`` as ages at app time ``now_ns``."""
    return {p: shift(values[p], now_ns) for p in clock if p in values}


def to_stamps(ages: Mapping[str, Any], now_ns: int) -> dict[str, Any]:
    """Ages turned back into stamps of a runtime whose app time is ``now_ns``."""
    return {p: shift(age, now_ns) for p, age in ages.items()}


def legacy_ages(
    variables: dict[str, Any],
    accessors: Mapping[str, Accessor],
    clock: Iterable[str],
    saved_ns: int,
) -> dict[str, Any]:
    """Ages from a file written before clock variables were stored as ages (its stamps are
    in the app time ``saved_ns`` it was written at); they are taken out of ``variables``.

    Such files marked a phase's pending clock as a negative stamp; a block declaring
    ``CLOCK_PENDING`` (stamp variable → flag variable) gets that flag set from it.
    """
    ages: dict[str, Any] = {}
    for path in clock:
        if path not in variables:
            continue
        stamp = variables.pop(path)
        owner, attr = accessors[path]
        flag = getattr(type(owner), "CLOCK_PENDING", {}).get(attr)
        if flag is not None:
            flag_path = path[: -len(attr)] + flag
            if flag_path not in variables and isinstance(stamp, int):
                variables[flag_path] = stamp < 0
                stamp = max(stamp, 0)
        ages[path] = shift(stamp, saved_ns)
    return ages

"""Can a new manifest replace the running one online? Points, drivers and schedule must stay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from runtime.manifest import AppManifest

# What an online change may alter in a task: only which programs it runs.
_TASK_FIXED = ("period_ms", "priority", "overrun", "watchdog_ms", "spin_us")


def incompatibilities(old: AppManifest, new: AppManifest) -> list[str]:
    """Every reason ``new`` cannot be swapped in while ``old`` runs (empty: compatible).

    Points and drivers are bound to running hardware and the schedule is running: changing
    them needs a restart. Programs, their logic, parameters' ranges and retain may change.
    """
    problems: list[str] = []
    if new.name != old.name:
        problems.append(f"app name {new.name!r} differs from the running {old.name!r}")
    problems += _by_name("drivers", old.drivers, new.drivers)
    problems += _by_name("points", {p.name: p for p in old.points}, {p.name: p for p in new.points})
    old_tasks = [t.name for t in old.tasks]
    new_tasks = [t.name for t in new.tasks]
    if old_tasks != new_tasks:
        problems.append(f"tasks {new_tasks} differ from the running {old_tasks}")
    else:
        for o, n in zip(old.tasks, new.tasks, strict=True):
            changed = [f for f in _TASK_FIXED if getattr(o, f) != getattr(n, f)]
            if changed:
                problems.append(f"task {o.name!r} changes {', '.join(changed)}")
    if new.realtime != old.realtime:
        problems.append("realtime settings differ (they apply when the scan thread starts)")
    old_params = {p.name: p for p in old.parameters}
    for p in new.parameters:
        was = old_params.get(p.name)
        if was is not None and was.type != p.type:
            problems.append(f"parameter {p.name!r} changes type {was.type} → {p.type}")
    return [f"{p}; an online change cannot do that, a restart can" for p in problems]


def _by_name(what: str, old: Mapping[str, BaseModel], new: Mapping[str, BaseModel]) -> list[str]:
    out = []
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    if added:
        out.append(f"{what} added: {', '.join(added)}")
    if removed:
        out.append(f"{what} removed: {', '.join(removed)}")
    for name in sorted(set(old) & set(new)):
        diff = _fields_changed(old[name].model_dump(), new[name].model_dump())
        if diff:
            out.append(f"{what[:-1]} {name!r} changes {', '.join(diff)}")
    return out


def _fields_changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]

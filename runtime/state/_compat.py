"""Can a new manifest replace the running one online? What stays fixed, what may change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from runtime.core.manifest import AppManifest, TaskSpec

# What an online change may alter in a task besides its programs: its timing, from the next
# release on (ScanEngine.retime_task). Priority orders the tasks against each other.
TASK_RETIMED = ("period_ms", "overrun", "watchdog_ms", "spin_us")
_TASK_FIXED = ("priority",)
RESTART = "; an online change cannot do that, a restart can"


def incompatibilities(old: AppManifest, new: AppManifest) -> list[str]:
    """Every reason ``new`` cannot be swapped in while ``old`` runs (empty: compatible).

    Drivers are opened on running hardware and the set of tasks is the running schedule:
    changing them needs a restart. Programs, their logic, parameters, retain, task periods
    and points on drivers that can rebind may change (points: ``_points.plan_points``).
    """
    problems: list[str] = []
    if new.name != old.name:
        problems.append(f"app name {new.name!r} differs from the running {old.name!r}")
    problems += _by_name("drivers", old.drivers, new.drivers)
    old_tasks = [t.name for t in old.tasks]
    new_tasks = [t.name for t in new.tasks]
    if old_tasks != new_tasks:
        problems.append(f"tasks {new_tasks} differ from the running {old_tasks}")
    else:
        for o, n in zip(old.tasks, new.tasks, strict=True):
            changed = [f for f in _TASK_FIXED if getattr(o, f) != getattr(n, f)]
            if changed:
                problems.append(f"task {o.name!r} changes {', '.join(changed)}")
        if _fastest(old.tasks) != _fastest(new.tasks):
            problems.append(
                f"the fastest task would become {_fastest(new.tasks)!r} instead of "
                f"{_fastest(old.tasks)!r} (it carries the trace, retain and telemetry)"
            )
    if new.realtime != old.realtime:
        problems.append("realtime settings differ (they apply when the scan thread starts)")
    return [p + RESTART for p in problems]


def retimed(old: AppManifest, new: AppManifest) -> dict[str, tuple[TaskSpec, TaskSpec]]:
    """Task name → (old spec, new spec) for the tasks whose timing changes."""
    return {
        o.name: (o, n)
        for o, n in zip(old.tasks, new.tasks, strict=True)
        if any(getattr(o, f) != getattr(n, f) for f in TASK_RETIMED)
    }


def _fastest(tasks: list[TaskSpec]) -> str:
    return min(enumerate(tasks), key=lambda it: (it[1].period_ns, it[0]))[1].name


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

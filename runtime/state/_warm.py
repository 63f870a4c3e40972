"""What a retain file gives a (possibly newer) version: the merge plan of a warm start."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.core._loader import LoadedApp
from runtime.core._migrate import Migrate
from runtime.state import _timebase, _tree
from runtime.state._merge import (
    CARRIED,
    Check,
    Plan,
    Prefer,
    changed_by,
    merge,
    parameter_path,
)


class WarmStartError(Exception):
    """The saved state cannot be merged into this version (a refused plan, a migrate failure)."""

    def __init__(self, message: str, plan: Plan | None = None) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass
class WarmPlan:
    """The plan and what to write: leaf path → value, parameter name → value."""

    plan: Plan
    variables: dict[str, Any]
    parameters: dict[str, Any]
    legacy_initials: bool  # the file predates recorded initial values: running values kept
    legacy_clock: bool  # the file stored stamps, not ages: ages derived from its app time


def retained_initials(
    app: LoadedApp, accessors: Mapping[str, _tree.Accessor]
) -> dict[str, dict[str, Any]]:
    """What a retain file records of this version's initial values (clock stamps excepted)."""
    clock = _tree.clock_paths(accessors)
    return {
        "variables": {p: app.initials[p] for p in accessors if p not in clock},
        "parameters": {
            n: v for n, v in app.parameter_defaults.items() if app.parameters[n].spec.retain
        },
    }


def plan_warm_start(
    app: LoadedApp,
    accessors: Mapping[str, _tree.Accessor],
    doc: Mapping[str, Any],
    *,
    prefer: Prefer = None,
    strict: bool = False,
    now_ns: int = 0,
) -> WarmPlan:
    """Merge a retain document into ``app`` (whose retained leaves are ``accessors``).

    ``now_ns`` is the app time the values are loaded at (0 before a fresh runtime's first
    cycle): the file's ages become stamps of that time base.
    """
    data = doc["data"]
    variables = dict(data.get("variables", {}))
    clock = _tree.clock_paths(accessors)
    section = data.get("clock")
    if isinstance(section, dict):
        ages = dict(section.get("ages", {}))
    else:
        saved_ns = round(float(doc.get("app_time_s", 0.0)) * 1e9)
        ages = _timebase.legacy_ages(variables, accessors, clock, saved_ns)
    running = variables | _timebase.to_stamps(ages, now_ns)
    initials = data.get("initials")
    new_initials = {p: app.initials[p] for p in accessors}
    same_version = doc["app_version"] == app.version
    old_initials: dict[str, Any] = {}
    if isinstance(initials, dict):
        old_initials = dict(initials.get("variables", {}))
        # a stamp's initial means nothing as an age: the clock leaves merge as unchanged
        old_initials.update({p: new_initials[p] for p in clock if p in new_initials})
    elif same_version:  # an older file of this very version: its initials are ours
        old_initials = new_initials
    migrated: set[str] = set()
    migrate = None if same_version else app.migrate_for(str(doc["app_version"]))
    if migrate is not None:
        running, migrated = _migrate(app, migrate, str(doc["app_version"]), running)
    plan = merge(
        old_initials, running, new_initials, prefer=prefer, strict=strict, migrated_paths=migrated
    )
    params = _parameters(app, data, initials, same_version, prefer)
    plan.decisions += params.decisions
    return WarmPlan(
        plan=plan,
        variables={
            d.path: d.value for d in plan.decisions if d.outcome in CARRIED and d.path in accessors
        },
        parameters={
            d.path.split(":", 1)[1]: d.value for d in params.decisions if d.outcome in CARRIED
        },
        legacy_initials=not isinstance(initials, dict) and not same_version,
        legacy_clock=not isinstance(section, dict) and bool(ages),
    )


def _parameters(
    app: LoadedApp, data: Mapping[str, Any], initials: Any, same_version: bool, prefer: Prefer
) -> Plan:
    saved = {parameter_path(n): v for n, v in data.get("parameters", {}).items()}
    retained = [n for n, p in app.parameters.items() if p.spec.retain]
    defaults = app.parameter_defaults
    new = {parameter_path(n): defaults[n] for n in retained}
    old: dict[str, Any] = {}
    if isinstance(initials, dict):
        old = {parameter_path(n): v for n, v in initials.get("parameters", {}).items()}
    elif same_version:  # an older file of this very version: its defaults are ours
        old = new
    checks: dict[str, Check] = {parameter_path(n): app.parameters[n].spec.check for n in retained}
    return merge(old, saved, new, prefer=prefer, checks=checks)


def _migrate(
    app: LoadedApp, migrate: Migrate, old_version: str, running: dict[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    try:
        result = migrate(old_version, copy.deepcopy(running))
    except Exception as exc:
        raise WarmStartError(f"migrate() of {app.version} raised {exc!r}") from exc
    if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
        raise WarmStartError("migrate() must return a dict of instance path → value")
    return result, changed_by(running, result)

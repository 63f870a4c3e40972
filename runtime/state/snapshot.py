"""Whole-runtime snapshots between two cycles: programs, parameters, image, tasks, drivers."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import structlog

from hal import Quality
from runtime.core._engine import RuntimeState, ScanEngine
from runtime.core._loader import LoadedApp
from runtime.core.manifest import GLOBALS_ROOT
from runtime.state import _tree
from runtime.state._merge import (
    CARRIED,
    Plan,
    Prefer,
    brief,
    changed_by,
    merge,
    parameter_path,
)

SNAPSHOT_FORMAT = "vplc-snapshot"
SNAPSHOT_SCHEMA = 1
log = structlog.get_logger("vplc.snapshot")


class SnapshotError(Exception):
    """A snapshot that does not belong to this runtime; ``str()`` says why."""


def take_snapshot(engine: ScanEngine) -> dict[str, Any]:
    """The whole state as a JSON-able dict; call between cycles.

    With a scan thread running: ``between_cycles(engine, take_snapshot)``.

    Times are relative to the schedule's epoch, so a snapshot restores into a runtime whose
    clock reads anything at all; the app time goes along and continues there, so app-time
    stamps in blocks stay valid. The version's initial values go along too: a runtime of
    another version merges the state (``restore_snapshot``).
    """
    app = engine.app
    tree = app.tree
    return {
        "format": SNAPSHOT_FORMAT,
        "schema": SNAPSHOT_SCHEMA,
        "app": app.name,
        "version": app.version,
        "lifecycle": engine.state.value,
        "fault_reason": engine.fault_reason,
        "now_ns": engine.now_ns,
        "tasks": {
            t.name: {
                "next_release_ns": t.next_release_ns - engine.epoch_ns,
                "ctx": {
                    "cycle": t.ctx.cycle,
                    "now_ns": t.ctx.now_ns,
                    "dt": t.ctx.dt,
                    "first_scan": t.ctx.first_scan,
                },
                "stats": {
                    "cycles": t.stats.cycles,
                    "overruns": t.stats.overruns,
                    "skipped": t.stats.skipped,
                    "faults": t.stats.faults,
                },
            }
            for t in engine.tasks
        },
        # State by instance-path root: every program, then the globals (no program may be
        # named "globals"), so a merge and a handover digest see them like program variables.
        "programs": {name: _tree.read(tree.program_leaves(name)) for name in app.programs}
        | ({GLOBALS_ROOT: _tree.read(tree.global_leaves())} if app.globals else {}),
        "parameters": {name: p.value for name, p in app.parameters.items()},
        "initials": {"variables": app.initials, "parameters": app.parameter_defaults},
        "points": {
            p.name: {
                "value": p.value,
                "quality": int(p.quality),
                "timestamp_ns": p.timestamp_ns,
                "forced": p.forced,
                "forced_value": p.forced_value,
            }
            for p in engine.image
        },
        "drivers": {d.name: d.snapshot() for d in engine.drivers},
    }


def restore_snapshot(
    engine: ScanEngine,
    snap: Mapping[str, Any],
    *,
    prefer: Prefer = None,
    strict: bool = False,
) -> Plan:
    """Load a snapshot of the same app into ``engine`` (between cycles); returns the merge plan.

    A snapshot of another version is merged variable by variable (``runtime.state._merge``:
    old initial, snapshot value, this version's initial; ``prefer`` decides conflicts,
    ``strict`` refuses unresolved ones; the app's ``migrate`` runs first); points and drivers
    are restored by name. Opens the engine if needed (the schedule's epoch is needed to place
    the releases). Every part is checked before anything is written, so a refused snapshot
    changes nothing.
    """
    app = engine.app
    if snap.get("format") != SNAPSHOT_FORMAT or snap.get("schema") != SNAPSHOT_SCHEMA:
        raise SnapshotError(
            f"not a vplc snapshot of schema {SNAPSHOT_SCHEMA} (format {snap.get('format')!r}, "
            f"schema {snap.get('schema')!r})"
        )
    if snap["app"] != app.name:
        raise SnapshotError(f"snapshot is of app {snap['app']!r}, this runtime runs {app.name!r}")
    have = sorted(t.name for t in engine.tasks)
    if sorted(snap["tasks"]) != have:
        raise SnapshotError(f"snapshot tasks {sorted(snap['tasks'])} differ from {have}")
    plan = plan_snapshot(app, snap, prefer=prefer, strict=strict)
    if not plan.ok:
        raise SnapshotError(
            f"snapshot of {snap['app']} {snap['version']} does not fit {app.name} "
            f"{app.version}: " + "; ".join(plan.problems())
        )
    accessors = app.tree.leaves()
    carried = [d for d in plan.decisions if d.outcome in CARRIED]
    engine.open()
    _tree.assign((*accessors[d.path], d.value) for d in carried if d.path in accessors)
    for d in carried:
        if d.path.startswith("parameter:"):
            app.parameters[d.path.split(":", 1)[1]].value = d.value
    _restore_points(engine, snap["points"])
    _restore_tasks(engine, snap["tasks"])
    for driver in engine.drivers:
        if driver.name in snap["drivers"]:
            driver.restore(snap["drivers"][driver.name])
    engine.now_ns = int(snap["now_ns"])
    engine.state = RuntimeState(snap["lifecycle"])
    engine.fault_reason = str(snap["fault_reason"])
    log.info(
        "snapshot_restored",
        app=app.name,
        version=app.version,
        snapshot_version=snap["version"],
        app_time_ns=engine.now_ns,
        plan=brief(plan.summary()) if snap["version"] != app.version else plan.counts(),
    )
    return plan


def plan_snapshot(
    app: LoadedApp, snap: Mapping[str, Any], *, prefer: Prefer = None, strict: bool = False
) -> Plan:
    """The merge of a snapshot's programs and parameters into ``app``."""
    running = {p: v for values in snap["programs"].values() for p, v in values.items()}
    initials = snap.get("initials")
    same_version = snap["version"] == app.version
    if isinstance(initials, dict):
        old_vars, old_params = initials["variables"], initials["parameters"]
    elif same_version:  # an older snapshot of this very version: its initials are ours
        old_vars, old_params = app.initials, app.parameter_defaults
    else:
        old_vars, old_params = {}, {}
    migrated: set[str] = set()
    migrate = None if same_version else app.migrate_for(str(snap["version"]))
    if migrate is not None:
        try:
            result = migrate(str(snap["version"]), copy.deepcopy(running))
        except Exception as exc:
            raise SnapshotError(f"migrate() of {app.version} raised {exc!r}") from exc
        if not isinstance(result, dict):
            raise SnapshotError("migrate() must return a dict of instance path → value")
        running, migrated = result, changed_by(running, result)
    plan = merge(
        old_vars, running, app.initials, prefer=prefer, strict=strict, migrated_paths=migrated
    )
    params = merge(
        {parameter_path(n): v for n, v in old_params.items()},
        {parameter_path(n): v for n, v in snap["parameters"].items()},
        {parameter_path(n): v for n, v in app.parameter_defaults.items()},
        prefer=prefer,
        checks={parameter_path(n): p.spec.check for n, p in app.parameters.items()},
    )
    plan.decisions += params.decisions
    return plan


def _restore_points(engine: ScanEngine, points: Mapping[str, Any]) -> None:
    for point in engine.image:
        st = points.get(point.name)
        if st is None:  # a point of this version the snapshot's lacks: it keeps its initial
            continue
        point.value = st["value"]
        point.quality = Quality(st["quality"])
        point.timestamp_ns = int(st["timestamp_ns"])
        point.forced = bool(st["forced"])
        point.forced_value = st["forced_value"]


def _restore_tasks(engine: ScanEngine, tasks: Mapping[str, Any]) -> None:
    for task in engine.tasks:
        st = tasks[task.name]
        task.next_release_ns = engine.epoch_ns + int(st["next_release_ns"])
        ctx = task.ctx
        ctx.cycle = int(st["ctx"]["cycle"])
        ctx.now_ns = int(st["ctx"]["now_ns"])
        ctx.now = ctx.now_ns / 1e9
        ctx.dt = float(st["ctx"]["dt"])
        ctx.first_scan = bool(st["ctx"]["first_scan"])
        for key, value in st["stats"].items():
            setattr(task.stats, key, int(value))

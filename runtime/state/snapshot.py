"""Whole-runtime snapshots between two cycles: programs, parameters, image, tasks, drivers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from hal import Quality
from runtime._engine import RuntimeState, ScanEngine
from runtime.state import _tree

SNAPSHOT_FORMAT = "vplc-snapshot"
SNAPSHOT_SCHEMA = 1
log = structlog.get_logger("vplc.snapshot")


class SnapshotError(Exception):
    """A snapshot that does not belong to this runtime; ``str()`` says why."""


def take_snapshot(engine: ScanEngine) -> dict[str, Any]:
    """The whole state as a JSON-able dict; call between cycles.

    With a scan thread running: ``between_cycles(engine, take_snapshot)``.

    Times are relative to the schedule's epoch, so a snapshot restores into a runtime whose
    clock reads anything at all.
    """
    app = engine.app
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
        "programs": {
            name: _tree.read(_tree.program_accessors(name, prog))
            for name, prog in app.programs.items()
        },
        "parameters": {name: p.value for name, p in app.parameters.items()},
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


def restore_snapshot(engine: ScanEngine, snap: Mapping[str, Any]) -> None:
    """Load a snapshot of the same app and version into ``engine`` (between cycles).

    Opens the engine if needed (the schedule's epoch is needed to place the releases). Every
    part is checked before anything is written, so a refused snapshot changes nothing.
    """
    app = engine.app
    if snap.get("format") != SNAPSHOT_FORMAT or snap.get("schema") != SNAPSHOT_SCHEMA:
        raise SnapshotError(
            f"not a vplc snapshot of schema {SNAPSHOT_SCHEMA} (format {snap.get('format')!r}, "
            f"schema {snap.get('schema')!r})"
        )
    if (snap["app"], snap["version"]) != (app.name, app.version):
        raise SnapshotError(
            f"snapshot is of {snap['app']} {snap['version']}, this runtime runs {app.name} "
            f"{app.version}; a different version is loaded by an online change instead"
        )
    for key, have in (
        ("tasks", [t.name for t in engine.tasks]),
        ("programs", list(app.programs)),
        ("points", [p.name for p in engine.image]),
        ("drivers", [d.name for d in engine.drivers]),
    ):
        if sorted(snap[key]) != sorted(have):
            raise SnapshotError(f"snapshot {key} {sorted(snap[key])} differ from {sorted(have)}")
    assignments = []
    for name, prog in app.programs.items():
        planned, diff = _tree.plan(snap["programs"][name], _tree.program_accessors(name, prog))
        if diff.refused or diff.new or diff.dropped:
            raise SnapshotError(
                f"program {name!r} state does not match the snapshot: "
                + "; ".join(diff.refused + diff.new[:5] + diff.dropped[:5])
            )
        assignments.extend(planned)
    params = {n: app.parameters[n].spec.check(v) for n, v in snap["parameters"].items()}
    engine.open()
    _tree.assign(assignments)
    for name, value in params.items():
        app.parameters[name].value = value
    _restore_points(engine, snap["points"])
    _restore_tasks(engine, snap["tasks"])
    for driver in engine.drivers:
        driver.restore(snap["drivers"][driver.name])
    engine.now_ns = int(snap["now_ns"])
    engine.state = RuntimeState(snap["lifecycle"])
    engine.fault_reason = str(snap["fault_reason"])
    log.info("snapshot_restored", app=app.name, version=app.version, app_time_ns=engine.now_ns)


def _restore_points(engine: ScanEngine, points: Mapping[str, Any]) -> None:
    for point in engine.image:
        st = points[point.name]
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

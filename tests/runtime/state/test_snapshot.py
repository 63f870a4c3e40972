"""Whole-runtime snapshots: a restored run continues exactly like an uninterrupted one."""

from __future__ import annotations

import json
import time

import pytest

from runtime import RealClock, RuntimeState, ScanEngine, load_app
from runtime.state import SnapshotError, between_cycles, restore_snapshot, take_snapshot
from tests.conftest import MakeApp
from tests.runtime.state.helpers import Rig, state_app


def test_restored_run_continues_byte_identical(make_app: MakeApp) -> None:
    app_dir = state_app(make_app)
    straight = Rig(app_dir)
    straight.run_ms(3000)

    first = Rig(app_dir)
    first.run_ms(1234)
    first.engine.app.parameters["gain"].set(3.5)  # an operator's write is state too
    first.engine.image["X"].force(0.25)
    snap = json.loads(json.dumps(take_snapshot(first.engine)))  # must survive JSON
    assert snap["tasks"]["fast"]["ctx"]["cycle"] == 124
    first.run_ms(3000)

    straight2 = Rig(app_dir)
    straight2.run_ms(1234)
    straight2.engine.app.parameters["gain"].set(3.5)
    straight2.engine.image["X"].force(0.25)
    straight2.run_ms(3000)

    # A fresh runtime of the same app whose clock reads something else entirely.
    restored = Rig(app_dir, start_ns=987_654_321)
    restore_snapshot(restored.engine, snap)
    assert restored.program().pid.INIT is True
    restored.run_ms(3000)
    assert repr(restored.after(1240)) == repr(straight2.after(1240))
    assert repr(restored.after(1240)) == repr(first.after(1240))
    assert restored.trace[0][:2] == (1_240_000_000, 125)
    assert restored.engine.tasks[0].stats.cycles == straight2.engine.tasks[0].stats.cycles
    # and the operator's changes really mattered (the comparison is not vacuous)
    assert straight.after(1240) != straight2.after(1240)


def test_snapshot_keeps_lifecycle_state(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    rig.engine.fault("test fault")
    snap = take_snapshot(rig.engine)
    other = Rig(state_app(make_app))
    restore_snapshot(other.engine, snap)
    assert other.engine.state is RuntimeState.FAULT
    assert other.engine.fault_reason == "test fault"
    count = other.program().count
    other.run_ms(200)
    assert other.program().count == count  # programs do not run in FAULT


def test_snapshot_of_another_app_or_with_bad_values_is_refused(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(50)
    snap = take_snapshot(rig.engine)
    foreign = Rig(state_app(make_app, name="otherapp"))
    with pytest.raises(SnapshotError, match="otherapp"):
        restore_snapshot(foreign.engine, snap)
    with pytest.raises(SnapshotError, match="schema"):
        restore_snapshot(rig.engine, snap | {"schema": 99})
    bad = json.loads(json.dumps(snap))
    bad["programs"]["main"]["main.count"] = "many"
    count = rig.program().count
    with pytest.raises(SnapshotError, match=r"main\.count: type changed: str 'many'"):
        restore_snapshot(rig.engine, bad)
    assert rig.program().count == count  # a refused snapshot changed nothing


def test_snapshot_from_a_running_scan_thread(make_app: MakeApp) -> None:
    app = load_app(state_app(make_app))
    engine = ScanEngine(app, clock=RealClock())
    engine.start()
    engine.start_thread()
    try:
        deadline = time.monotonic() + 5
        while engine.tasks[0].stats.cycles < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        snap = between_cycles(engine, take_snapshot)
    finally:
        engine.request_stop()
        engine.join(5)
        engine.close()
    json.dumps(snap)
    count = snap["programs"]["main"]["main.count"]
    assert count >= 5
    # taken between cycles: the task's cycle counter and the program's count agree
    assert snap["tasks"]["fast"]["ctx"]["cycle"] == count

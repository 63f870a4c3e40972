"""Global variables in the state machinery: retain, snapshots, online change and the merge."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import LoadedApp, ScanEngine, VirtualClock, load_app
from runtime.state import (
    OnlineChangeError,
    RetainStore,
    _file,
    change_online,
    prepare_change,
    restore_snapshot,
    take_snapshot,
)
from tests.conftest import MakeApp
from tests.runtime.core.test_globals import GLOBALS, SHARING, sharing_manifest


def _engine(app: LoadedApp) -> ScanEngine:
    engine = ScanEngine(app, clock=VirtualClock())
    engine.start()
    return engine


def _changed_globals(**edits: dict[str, Any]) -> list[dict[str, Any]]:
    """GLOBALS with some entries edited (``None`` removes one), and any new ones appended."""
    out = []
    for g in copy.deepcopy(GLOBALS):
        edit = edits.pop(g["name"], {})
        if edit is not None:
            out.append(g | edit)
    return out + [{"name": n, **e} for n, e in edits.items() if e is not None]


def _decision(plan: dict[str, Any], path: str) -> dict[str, Any]:
    found = [c for c in plan["changes"] if c["path"] == path]
    assert found, f"{path} not in {plan['changes']}"
    return found[0]


def _run_high(app: LoadedApp) -> ScanEngine:
    """Two cycles with a high level: high TRUE, trips 1, level 6.0 (initial 1.0)."""
    engine = _engine(app)
    app.drivers["mem"].values["x"] = 3.0  # type: ignore[attr-defined]
    engine.run_until(20_000_000)
    assert (app.globals["high"].value, app.globals["trips"].value) == (True, 1)
    return engine


def test_retained_globals_survive_a_restart_and_the_others_start_again(
    make_app: MakeApp, tmp_path: Path
) -> None:
    folder = make_app(sharing_manifest(retain={"interval_s": 0.01}), SHARING)
    app = load_app(folder)
    store = RetainStore(tmp_path / "r.retain", app)
    store.load()
    engine = _run_high(app)
    store.attach(engine)
    engine.run_until(60_000_000)
    engine.close()
    store.close()
    saved = _file.decode((tmp_path / "r.retain").read_bytes())["data"]
    assert saved["variables"] == {"globals.high": True, "globals.trips": 1}
    assert saved["initials"]["variables"] == {"globals.high": False, "globals.trips": 0}

    again = load_app(folder)
    report = RetainStore(tmp_path / "r.retain", again).load()
    assert report.started == "warm" and report.restored == 2
    assert (again.globals["high"].value, again.globals["trips"].value) == (True, 1)
    assert again.globals["level"].value == 1.0  # not retained: its initial value

    cold = load_app(folder)
    RetainStore(tmp_path / "r.retain", cold).load(mode="cold")
    assert (cold.globals["high"].value, cold.globals["trips"].value) == (False, 0)


def test_retain_variables_may_name_a_global_by_path(make_app: MakeApp, tmp_path: Path) -> None:
    folder = make_app(sharing_manifest(retain={"variables": ["globals.level"]}), SHARING)
    store = RetainStore(tmp_path / "r.retain", load_app(folder))
    assert store.variables == ["globals.high", "globals.trips", "globals.level"]


def test_a_snapshot_carries_the_globals_into_another_runtime(make_app: MakeApp) -> None:
    folder = make_app(sharing_manifest(), SHARING)
    old = _run_high(load_app(folder))
    snap = json.loads(json.dumps(take_snapshot(old)))
    assert snap["programs"]["globals"] == {
        "globals.level": 6.0,
        "globals.high": True,
        "globals.trips": 1,
        "globals.mode": "HIGH",
    }
    new_app = load_app(folder)
    plan = restore_snapshot(_engine(new_app), snap)
    assert plan.ok
    assert {n: g.value for n, g in new_app.globals.items()} == {
        "level": 6.0,
        "high": True,
        "trips": 1,
        "mode": "HIGH",
    }
    # the new programs read the restored cells
    assert new_app.programs["reader"].high is new_app.globals["high"]  # type: ignore[attr-defined]


def test_an_online_change_carries_running_globals_into_the_new_cells(make_app: MakeApp) -> None:
    app = load_app(make_app(sharing_manifest(), SHARING))
    engine = _run_high(app)
    new_dir = make_app(sharing_manifest(version="1.0.1"), SHARING)
    report = change_online(engine, new_dir)
    new = engine.app
    assert new is not app and new.globals["trips"] is not app.globals["trips"]
    assert (new.globals["trips"].value, new.globals["mode"].value) == (1, "HIGH")
    assert new.programs["writer"].trips is new.globals["trips"]  # type: ignore[attr-defined]
    engine.run_until(60_000_000)
    assert report.status == "committed" and new.globals["trips"].value == 1
    engine.close()


def test_globals_added_removed_and_reinitialised_follow_the_three_way_merge(
    make_app: MakeApp,
) -> None:
    app = load_app(make_app(sharing_manifest(), SHARING))
    engine = _run_high(app)
    # level ran away from its initial (1.0 → 6.0); mode too; trips is back at its initial
    app.globals["trips"].value = 0
    changed = _changed_globals(
        level={"initial": 2.0},  # changed at run time and by the new version: a conflict
        trips={"initial": 5},  # running value = old initial: the new initial is taken
        mode=None,  # removed
        batches={"type": "INT", "initial": 3},  # added
    )
    without_mode = SHARING.replace('    mode = StringGlobal("mode")\n', "").replace(
        '        self.mode.value = "HIGH" if self.high.value else "NORMAL"\n', ""
    )
    assert "mode" not in without_mode
    new_dir = make_app(sharing_manifest(version="1.1.0", globals=changed), without_mode)
    report = change_online(engine, new_dir)
    plan = report.plan
    level = _decision(plan, "globals.level")
    assert (level["outcome"], level["value"], level["unresolved"]) == ("conflict", 6.0, True)
    assert _decision(plan, "globals.trips") == {
        "path": "globals.trips",
        "outcome": "new_value",
        "old_initial": 0,
        "running": 0,
        "new_initial": 5,
        "value": 5,
    }
    assert _decision(plan, "globals.mode")["outcome"] == "dropped"
    assert _decision(plan, "globals.batches")["outcome"] == "added"
    new = engine.app
    assert (new.globals["level"].value, new.globals["trips"].value) == (6.0, 5)
    assert new.globals["batches"].value == 3 and "mode" not in new.globals
    engine.close()


def test_a_lossy_type_change_of_a_global_is_refused_naming_it(make_app: MakeApp) -> None:
    app = load_app(make_app(sharing_manifest(), SHARING))
    engine = _run_high(app)
    logic = SHARING.replace('StringGlobal("mode")', 'BoolGlobal("mode")').replace(
        'self.mode.value = "HIGH" if self.high.value else "NORMAL"',
        "self.mode.value = self.high.value",
    )
    changed = _changed_globals(mode={"type": "BOOL", "initial": False})
    with pytest.raises(OnlineChangeError, match=r"globals\.mode: type changed: str 'HIGH'"):
        prepare_change(engine, make_app(sharing_manifest(version="2.0.0", globals=changed), logic))
    assert engine.app is app and app.globals["mode"].value == "HIGH"
    engine.close()

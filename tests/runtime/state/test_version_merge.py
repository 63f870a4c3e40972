"""The state merge in use: online change, snapshot restore and warm start across versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime import load_app
from runtime.state import (
    OnlineChangeError,
    RetainError,
    RetainStore,
    SnapshotError,
    _file,
    change_online,
    prepare_change,
    restore_snapshot,
    take_snapshot,
)
from tests.conftest import MakeApp
from tests.runtime.state.helpers import STATE_LOGIC, Rig, manifest, state_app

GAIN_12 = STATE_LOGIC.replace("PID(KC=0.8,", "PID(KC=1.2,")
PARAMS = [{"name": "gain", "type": "LREAL", "default": 2.0, "min": 0, "max": 10}]


def _decision(report_plan: dict[str, Any], path: str) -> dict[str, Any]:
    found = [c for c in report_plan["changes"] if c["path"] == path]
    assert found, f"{path} not in {report_plan['changes']}"
    return found[0]


def test_a_gain_changed_by_the_new_version_is_taken(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(500)
    integral = rig.program().pid.I
    report = change_online(rig.engine, state_app(make_app, "1.0.1", GAIN_12))
    assert report.status == "trial"
    pid = rig.program().pid
    assert pid.KC == 1.2 and pid.I == integral  # new gain, running integral kept
    d = _decision(report.plan, "main.pid.KC")
    assert d["outcome"] == "new_value" and (d["old_initial"], d["new_initial"]) == (0.8, 1.2)
    assert report.plan["counts"]["new_value"] == 1 and report.plan["counts"]["conflict"] == 0
    rig.run_ms(600)
    assert report.status == "committed" and rig.program().pid.KC == 1.2


def test_a_gain_changed_at_run_time_is_a_conflict(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(200)
    rig.program().pid.KC = 0.9  # tuned by an engineer on the running version
    report = change_online(rig.engine, state_app(make_app, "1.0.1", GAIN_12))
    assert rig.program().pid.KC == 0.9
    d = _decision(report.plan, "main.pid.KC")
    assert d["outcome"] == "conflict" and d["unresolved"] and d["running"] == 0.9
    rig.run_ms(300)

    rig.program().pid.KC = 0.95
    report = change_online(rig.engine, state_app(make_app, "1.0.2", GAIN_12), prefer="new")
    # 1.0.1's initial is 1.2 too: unchanged, so the running value stays whatever prefer says
    assert rig.program().pid.KC == 0.95 and report.plan["counts"]["conflict"] == 0
    rig.run_ms(400)
    gain_15 = STATE_LOGIC.replace("PID(KC=0.8,", "PID(KC=1.5,")
    change_online(rig.engine, state_app(make_app, "1.0.3", gain_15), prefer="new")
    assert rig.program().pid.KC == 1.5


def test_strict_refuses_an_unresolved_conflict_naming_it(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(200)
    rig.program().pid.KC = 0.9
    with pytest.raises(OnlineChangeError, match=r"main\.pid\.KC: unresolved conflict") as err:
        prepare_change(rig.engine, state_app(make_app, "1.0.1", GAIN_12), strict=True)
    assert err.value.report.plan["counts"]["unresolved"] == 1
    rig.run_ms(400)
    assert rig.version == "1.0.0" and rig.program().pid.KC == 0.9 and rig.program().count == 40
    report = change_online(
        rig.engine, state_app(make_app, "1.0.1", GAIN_12), strict=True, prefer="running"
    )
    assert report.status == "trial" and rig.program().pid.KC == 0.9


def test_parameters_follow_the_same_rules_and_added_ones_take_their_default(
    make_app: MakeApp,
) -> None:
    v1 = [*PARAMS, {"name": "limit", "type": "LREAL", "default": 5.0}]
    rig = Rig(make_app(manifest(parameters=v1), STATE_LOGIC))
    rig.engine.app.parameters["limit"].set(7.0)  # an operator's write
    rig.run_ms(100)
    v2 = [
        PARAMS[0] | {"default": 2.5},  # untouched at run time: the new default
        {"name": "limit", "type": "LREAL", "default": 6.0},  # operator's 7.0 stays (conflict)
        {"name": "extra", "type": "INT", "default": 3},  # added
    ]
    report = change_online(rig.engine, make_app(manifest("1.1.0", parameters=v2), STATE_LOGIC))
    params = rig.engine.app.parameters
    assert (params["gain"].value, params["limit"].value, params["extra"].value) == (2.5, 7.0, 3)
    outcomes = {c["path"]: c["outcome"] for c in report.plan["changes"]}
    assert outcomes["parameter:gain"] == "new_value"
    assert outcomes["parameter:limit"] == "conflict"
    assert outcomes["parameter:extra"] == "added"


def test_new_program_on_an_existing_task_and_removed_variables(make_app: MakeApp) -> None:
    extra = STATE_LOGIC + (
        "\n\nclass Extra(Program):\n    VARS = {'ticks': 0}\n\n"
        "    def execute(self, ctx):\n        self.ticks += 1\n"
    )
    extra = extra.replace('"label": "batch"}', '"label": "batch", "fresh": 4}')
    programs = [{"name": "main", "entry": "logic:Main"}, {"name": "extra", "entry": "logic:Extra"}]
    tasks = [{"name": "fast", "period_ms": 10, "programs": ["main", "extra"]}]
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    v2 = make_app(manifest("1.1.0", programs=programs, tasks=tasks), extra)
    report = change_online(rig.engine, v2)
    rig.run_ms(150)
    assert report.status == "committed"
    assert rig.engine.app.programs["extra"].ticks == 5  # type: ignore[attr-defined]
    assert rig.program().fresh == 4
    assert set(report.new) == {"extra.ticks", "main.fresh"}


LOSSY = STATE_LOGIC.replace('"total": 0.0', '"total": 0').replace(
    "self.total += self.x.value", "self.total += round(self.x.value)"
)
ROUNDING = "\n\ndef migrate(old_version, state):\n    state['main.total'] = round(state['main.total'])\n    return state\n"  # noqa: E501
RAISING = (
    "\n\ndef migrate(old_version, state):\n    raise ValueError('no way from ' + old_version)\n"
)


def test_lossy_type_change_needs_the_migrate_hook(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(300)
    total = rig.program().total
    assert total != round(total)
    with pytest.raises(OnlineChangeError, match=r"main\.total: type changed: float .* int 0"):
        prepare_change(rig.engine, state_app(make_app, "2.0.0", LOSSY))
    with pytest.raises(OnlineChangeError, match=r"migrate\(\) .* raised ValueError\('no way"):
        prepare_change(rig.engine, state_app(make_app, "2.0.0", LOSSY + RAISING))
    assert rig.version == "1.0.0"
    report = change_online(rig.engine, state_app(make_app, "2.0.0", LOSSY + ROUNDING))
    assert report.migrated and rig.program().total == round(total)
    assert _decision(report.plan, "main.total")["outcome"] == "migrated"


def test_snapshot_of_an_older_version_is_merged(make_app: MakeApp) -> None:
    old = Rig(state_app(make_app))
    old.run_ms(400)
    old.program().acc.n = 1000  # a run-time change of a variable the new version re-initialises
    snap = json.loads(json.dumps(take_snapshot(old.engine)))
    v2_logic = GAIN_12.replace('"label": "batch"}', '"fresh": 9}').replace(
        "self.acc = Acc()", "self.acc = Acc()\n        self.acc.n = 5"
    )
    new = Rig(state_app(make_app, "1.1.0", v2_logic))
    plan = restore_snapshot(new.engine, snap)
    prog = new.program()
    assert prog.pid.KC == 1.2 and prog.pid.I == old.program().pid.I
    assert prog.count == old.program().count and prog.fresh == 9
    assert prog.acc.n == 1000  # conflict: the running value is kept, and reported
    assert [d.path for d in plan.of("conflict")] == ["main.acc.n"]
    assert [d.path for d in plan.of("dropped")] == ["main.label"]
    with pytest.raises(SnapshotError, match=r"main\.acc\.n: unresolved conflict"):
        restore_snapshot(Rig(state_app(make_app, "1.1.0", v2_logic)).engine, snap, strict=True)
    preferred = Rig(state_app(make_app, "1.1.0", v2_logic))
    restore_snapshot(preferred.engine, snap, prefer="new")
    assert preferred.program().acc.n == 5


RETAIN = {"variables": ["main.count", "main.pid", "main.total"], "interval_s": 0.5}


def _retained(make_app: MakeApp, tmp_path: Path, logic: str = STATE_LOGIC) -> Path:
    rig = Rig(make_app(manifest(retain=RETAIN), logic))
    store = RetainStore(tmp_path / "r.json", rig.app)
    store.load()
    store.attach(rig.engine)
    rig.run_ms(700)
    rig.engine.close()
    return tmp_path / "r.json"


def test_warm_start_on_a_newer_version_goes_through_the_merge(
    make_app: MakeApp, tmp_path: Path
) -> None:
    path = _retained(make_app, tmp_path)
    saved = _file.decode(path.read_bytes())
    assert saved["data"]["initials"]["variables"]["main.pid.KC"] == 0.8
    app = load_app(make_app(manifest("1.1.0", retain=RETAIN), GAIN_12))
    report = RetainStore(path, app).load()
    pid = app.programs["main"].pid  # type: ignore[attr-defined]
    assert pid.KC == 1.2 and pid.I == saved["data"]["variables"]["main.pid.I"]
    assert report.started == "warm" and report.saved_version == "1.0.0"
    assert _decision(report.plan, "main.pid.KC")["outcome"] == "new_value"


def test_a_file_without_initials_keeps_every_saved_value(make_app: MakeApp, tmp_path: Path) -> None:
    path = _retained(make_app, tmp_path)
    doc = _file.decode(path.read_bytes())
    for key in ("format", "schema"):
        doc.pop(key)
    del doc["data"]["initials"]  # as an older vplc wrote it
    path.write_bytes(_file.encode(doc))
    app = load_app(make_app(manifest("1.1.0", retain=RETAIN), GAIN_12))
    report = RetainStore(path, app).load()
    assert app.programs["main"].pid.KC == 0.8  # type: ignore[attr-defined]
    assert any("no initial values" in n for n in report.notes)
    # written by this very version: its initial values are this version's, nothing to say
    same = load_app(make_app(manifest(retain=RETAIN), STATE_LOGIC))
    report = RetainStore(path, same).load()
    assert report.notes == [] and report.plan["changes"] == []
    assert report.plan["counts"]["kept"] == report.restored > 10


def test_warm_start_refuses_a_lossy_type_change_and_migrate_fixes_it(
    make_app: MakeApp, tmp_path: Path
) -> None:
    path = _retained(make_app, tmp_path)
    with pytest.raises(RetainError, match=r"main\.total: type changed"):
        RetainStore(path, load_app(make_app(manifest("2.0.0", retain=RETAIN), LOSSY))).load()
    with pytest.raises(RetainError, match=r"migrate\(\) of 2\.0\.0 raised ValueError"):
        RetainStore(
            path, load_app(make_app(manifest("2.0.0", retain=RETAIN), LOSSY + RAISING))
        ).load()
    app = load_app(make_app(manifest("2.0.0", retain=RETAIN), LOSSY + ROUNDING))
    RetainStore(path, app).load()
    total = _file.decode(path.read_bytes())["data"]["variables"]["main.total"]
    assert app.programs["main"].total == round(total)  # type: ignore[attr-defined]

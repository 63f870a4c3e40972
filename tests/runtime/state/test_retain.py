"""Retain: warm/cold start, periodic and final checkpoints off the scan thread, bad files."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runtime import RuntimeState, ScanEngine, VirtualClock, load_app
from runtime.state import RetainError, RetainStore, _file, change_online
from tests.conftest import MakeApp
from tests.runtime.state.helpers import STATE_LOGIC, Rig, manifest

RETAIN = {"variables": ["main.count", "main.pid", "main.stages"], "interval_s": 0.5}
PARAMS = [
    {"name": "gain", "type": "LREAL", "default": 2.0, "min": 0, "max": 10, "retain": True},
    {"name": "other", "type": "LREAL", "default": 1.0},
]


def _app_dir(
    make_app: MakeApp, version: str = "1.0.0", logic: str = STATE_LOGIC, **kw: Any
) -> Path:
    kw.setdefault("retain", RETAIN)
    kw.setdefault("parameters", PARAMS)
    return make_app(manifest(version, **kw), logic)


def _run_with_retain(app_dir: Path, path: Path, ms: int, **load: Any) -> tuple[Rig, RetainStore]:
    rig = Rig(app_dir)
    store = RetainStore(path, rig.app)
    store.load(**load)
    store.attach(rig.engine)
    rig.run_ms(ms)
    return rig, store


def test_warm_start_restores_retained_and_cold_start_does_not(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app_dir = _app_dir(make_app)
    path = tmp_path / "r.json"
    rig, store = _run_with_retain(app_dir, path, 300)
    rig.engine.app.parameters["gain"].set(4.0)
    rig.engine.app.parameters["other"].set(9.0)
    old = rig.program()
    expected = (old.count, old.pid.I, old.pid.PV_PREV, old.stages[1].Q, old.stages[0].n)
    rig.engine.close()  # final checkpoint, writer joined
    assert store.statistics()["errors"] == 0 and store.written >= 1

    warm = Rig(app_dir)
    report = RetainStore(path, warm.app).load(mode="warm")
    new = warm.program()
    assert (new.count, new.pid.I, new.pid.PV_PREV, new.stages[1].Q, new.stages[0].n) == expected
    assert new.total == 0.0 and new.acc.Q == 0.0  # not retained: initial values
    assert warm.app.parameters["gain"].value == 4.0
    assert warm.app.parameters["other"].value == 1.0  # not retain: true
    assert report.started == "warm" and report.parameters == 1 and report.source == str(path)
    assert report.restored == len(RetainStore(path, warm.app).variables)

    cold = Rig(app_dir)
    report = RetainStore(path, cold.app).load(mode="cold")
    assert report.started == "cold" and cold.program().count == 0
    assert cold.app.parameters["gain"].value == 2.0


def test_periodic_checkpoints_follow_app_time_and_only_in_run(
    make_app: MakeApp, tmp_path: Path
) -> None:
    path = tmp_path / "r.json"
    rig, store = _run_with_retain(_app_dir(make_app), path, 2050)
    assert store.flush()
    assert store.checkpoints == 5  # after the first cycle (t=0) and at 0.5, 1.0, 1.5, 2.0 s
    assert store.written + store.superseded == 5
    doc = _file.decode(path.read_bytes())
    assert doc["data"]["variables"]["main.count"] == 201  # the newest always reaches the disk
    assert doc["app_time_s"] == 2.0
    rig.engine.stop()
    rig.run_ms(5000)  # STOP: one checkpoint for the clean stop, then none
    assert store.flush()
    assert store.checkpoints == 6
    assert _file.decode(path.read_bytes())["data"]["variables"]["main.count"] == 205
    assert _file.decode(_file.prev_path(path).read_bytes())["seq"] == doc["seq"]


def test_the_scan_thread_never_writes(make_app: MakeApp, tmp_path: Path, monkeypatch: Any) -> None:
    writers: set[str] = set()
    real_write = _file.write

    def spy(path: Path, doc: dict[str, Any], **kw: Any) -> int:
        writers.add(threading.current_thread().name)
        return real_write(path, doc, **kw)

    monkeypatch.setattr(_file, "write", spy)
    rig, _store = _run_with_retain(_app_dir(make_app), tmp_path / "r.json", 1100)
    rig.engine.close()
    assert writers == {"retain-writer"}


def test_no_final_checkpoint_in_fault(make_app: MakeApp, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    rig, store = _run_with_retain(_app_dir(make_app), path, 600)
    assert store.flush()
    seq = _file.decode(path.read_bytes())["seq"]
    rig.engine.fault("boom")
    rig.engine.close()
    assert _file.decode(path.read_bytes())["seq"] == seq


def _good_file(make_app: MakeApp, tmp_path: Path) -> tuple[Path, Path]:
    app_dir = _app_dir(make_app)
    path = tmp_path / "r.json"
    rig, store = _run_with_retain(app_dir, path, 600)
    assert store.flush()
    rig.run_ms(1100)
    rig.engine.close()  # two generations now: the latest and .prev
    return app_dir, path


def _corrupt(path: Path) -> str:
    data = bytearray(path.read_bytes())
    i = data.index(b'"main.count": ') + len(b'"main.count": ')
    data[i : i + 1] = b"7" if data[i : i + 1] != b"7" else b"8"
    path.write_bytes(bytes(data))
    return "checksum mismatch"


def _truncate(path: Path) -> str:
    path.write_bytes(path.read_bytes()[:200])
    return "not valid JSON"


def _foreign(path: Path) -> str:
    doc = _file.decode(path.read_bytes())
    doc.pop("format"), doc.pop("schema")
    path.write_bytes(_file.encode(doc | {"app": "mixer"}))
    return "written by app 'mixer', not by 'testapp'"


def _schema(path: Path) -> str:
    doc = json.loads(path.read_bytes())
    path.write_text(json.dumps(doc | {"schema": 2}))
    return "schema version 2 is not supported"


def _empty(path: Path) -> str:
    path.write_bytes(b"")
    return "empty"


BREAKERS = [_corrupt, _truncate, _foreign, _schema, _empty]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__)
def test_bad_file_is_refused_untouched(make_app: MakeApp, tmp_path: Path, breaker: Any) -> None:
    app_dir, path = _good_file(make_app, tmp_path)
    why = breaker(path)
    before = path.read_bytes(), _file.prev_path(path).read_bytes()
    app = load_app(app_dir)
    with pytest.raises(RetainError) as err:
        RetainStore(path, app).load(mode="warm")
    message = str(err.value)
    assert str(path) in message and why in message and "--on-bad-retain cold" in message
    assert "previous generation" in message  # the intact .prev is pointed out
    assert (path.read_bytes(), _file.prev_path(path).read_bytes()) == before
    assert app.programs["main"].count == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__)
def test_bad_file_on_bad_cold_moves_it_aside(
    make_app: MakeApp, tmp_path: Path, breaker: Any
) -> None:
    app_dir, path = _good_file(make_app, tmp_path)
    breaker(path)
    content = path.read_bytes()
    app = load_app(app_dir)
    store = RetainStore(path, app)
    report = store.load(mode="warm", on_bad="cold")
    assert report.started == "cold" and app.programs["main"].count == 0  # type: ignore[attr-defined]
    assert not path.exists()
    (aside,) = [Path(p) for p in report.moved_aside]
    assert aside.name.startswith("r.json.bad-") and aside.read_bytes() == content
    assert report.problems and str(path) in report.problems[0]
    store.write(store.capture())  # later checkpoints never overwrite the bad one
    assert aside.read_bytes() == content
    assert (
        _file.decode(path.read_bytes())["seq"]
        > _file.decode(_file.prev_path(path).read_bytes())["seq"]
    )


def test_missing_latest_after_a_crash_loads_the_previous(make_app: MakeApp, tmp_path: Path) -> None:
    app_dir, path = _good_file(make_app, tmp_path)
    prev = _file.decode(_file.prev_path(path).read_bytes())
    path.unlink()  # what a crash between the two renames leaves
    app = load_app(app_dir)
    report = RetainStore(path, app).load()
    assert report.started == "warm" and report.seq == prev["seq"]
    assert app.programs["main"].count == prev["data"]["variables"]["main.count"]  # type: ignore[attr-defined]


def test_values_that_do_not_fit_a_new_version_are_refused(
    make_app: MakeApp, tmp_path: Path
) -> None:
    _, path = _good_file(make_app, tmp_path)
    v2 = _app_dir(make_app, "2.0.0", STATE_LOGIC.replace('"count": 0,', '"count": "none",'))
    fits_not = r"does not fit testapp 2\.0\.0: main\.count: type changed: int 110"
    with pytest.raises(RetainError, match=fits_not):
        RetainStore(path, load_app(v2)).load()
    # an operator's gain of 4.0 (the default was 2.0) outside the new version's range
    doc = _file.decode(path.read_bytes())
    doc["data"]["parameters"]["gain"] = 4.0
    doc.pop("format"), doc.pop("schema")
    path.write_bytes(_file.encode(doc))
    narrower = [PARAMS[0] | {"max": 1.0, "default": 0.5}]
    v3 = _app_dir(make_app, "3.0.0", parameters=narrower)
    with pytest.raises(RetainError, match=r"parameter:gain: running value does not fit .*above"):
        RetainStore(path, load_app(v3)).load()
    reset = load_app(v3)
    RetainStore(path, reset).load(prefer="new")  # the operator's value gives way
    assert reset.parameters["gain"].value == 0.5


def test_new_version_restores_what_matches(make_app: MakeApp, tmp_path: Path) -> None:
    _, path = _good_file(make_app, tmp_path)
    logic = STATE_LOGIC.replace('"count": 0,', '"count": 0.0, "fresh": 1,')
    retain = {"variables": ["main.count", "main.fresh", "main.pid"], "interval_s": 1.0}
    app = load_app(_app_dir(make_app, "1.1.0", logic, retain=retain))
    report = RetainStore(path, app).load()
    assert report.converted == 1 and app.programs["main"].count == 110.0  # type: ignore[attr-defined]
    assert report.missing == ["main.fresh"] and "main.stages[0].Q" in report.dropped


def test_unknown_retain_path_is_a_clear_error(make_app: MakeApp, tmp_path: Path) -> None:
    retain = {"variables": ["main.count", "main.pidd"]}
    app = load_app(_app_dir(make_app, retain=retain))
    with pytest.raises(RetainError, match=r"app\.yaml: at retain\.variables\.1: 'main\.pidd'"):
        RetainStore(tmp_path / "r.json", app)


def test_no_write_before_load(make_app: MakeApp, tmp_path: Path) -> None:
    store = RetainStore(tmp_path / "r.json", load_app(_app_dir(make_app)))
    with pytest.raises(RuntimeError, match="load"):
        store.write(store.capture())
    engine = ScanEngine(store.app, clock=VirtualClock())
    with pytest.raises(RuntimeError, match="load"):
        store.attach(engine)


def test_checkpoints_follow_an_online_change(make_app: MakeApp, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    rig, _store = _run_with_retain(_app_dir(make_app), path, 300)
    logic = STATE_LOGIC.replace('"count": 0,', '"count": 0, "fresh": 5,')
    v2 = _app_dir(make_app, "1.1.0", logic, retain=RETAIN | {"variables": ["main.fresh"]})
    change_online(rig.engine, v2)
    rig.run_ms(1100)
    rig.engine.close()
    doc = _file.decode(path.read_bytes())
    assert doc["app_version"] == "1.1.0"
    assert doc["data"]["variables"] == {"main.fresh": 5}
    assert rig.engine.state is RuntimeState.STOP


def test_real_time_checkpoints_and_final_one_on_close(make_app: MakeApp, tmp_path: Path) -> None:
    from runtime import RealClock

    path = tmp_path / "r.json"
    app = load_app(_app_dir(make_app, retain=RETAIN | {"interval_s": 0.05}))
    store = RetainStore(path, app)
    store.load()
    engine = ScanEngine(app, clock=RealClock())
    store.attach(engine)
    engine.start()
    engine.start_thread()
    deadline = time.monotonic() + 5
    while store.written < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    engine.request_stop()
    engine.join(5)
    count = app.programs["main"].count  # type: ignore[attr-defined]
    engine.close()
    assert store.written >= 4 and store.errors == 0
    assert _file.decode(path.read_bytes())["data"]["variables"]["main.count"] == count

"""Retain files that must not load (NaN, huge, special files) and checkpoints that fail."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from runtime.state import RetainError, RetainStore, _file
from tests.conftest import MakeApp
from tests.runtime.state.helpers import STATE_LOGIC, Rig, manifest

RETAIN = {"variables": ["main.count", "main.pid", "main.stages"], "interval_s": 0.5}
PARAMS = [{"name": "gain", "type": "LREAL", "default": 2.0, "min": 0, "max": 10, "retain": True}]


def _app_dir(make_app: MakeApp) -> Path:
    return make_app(manifest(retain=RETAIN, parameters=PARAMS), STATE_LOGIC)


def _good_file(make_app: MakeApp, tmp_path: Path) -> tuple[Path, Path]:
    app_dir = _app_dir(make_app)
    path = tmp_path / "r.retain"
    rig = Rig(app_dir)
    store = RetainStore(path, rig.app)
    store.load()
    store.attach(rig.engine)
    rig.run_ms(1200)
    rig.engine.close()
    return app_dir, path


def _rewrite(path: Path, edit: Any) -> None:
    """Change the document and store it with a correct checksum: only the content is bad."""
    doc = json.loads(path.read_bytes())
    doc.pop("sha256")
    edit(doc)
    path.write_bytes(_file.encode(doc))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_retained_value_is_refused_naming_its_path(
    make_app: MakeApp, tmp_path: Path, bad: float
) -> None:
    app_dir, path = _good_file(make_app, tmp_path)
    _rewrite(path, lambda d: d["data"]["variables"].__setitem__("main.pid.I", bad))
    before = path.read_bytes()
    rig = Rig(app_dir)
    with pytest.raises(RetainError) as err:
        RetainStore(path, rig.app).load(mode="warm")
    assert "data.variables.main.pid.I" in str(err.value) and str(path) in str(err.value)
    assert path.read_bytes() == before  # refused untouched
    assert rig.program().pid.I == 0.0

    report = RetainStore(path, rig.app).load(mode="warm", on_bad="cold")
    assert report.started == "cold" and rig.program().pid.I == 0.0
    assert not path.exists() and len(list(tmp_path.glob("r.retain.bad-*"))) == 1


def test_non_finite_values_inside_lists_and_parameters_are_found(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app_dir, path = _good_file(make_app, tmp_path)
    _rewrite(path, lambda d: d["data"]["parameters"].__setitem__("gain", math.inf))
    with pytest.raises(RetainError, match=r"data\.parameters\.gain = inf"):
        RetainStore(path, Rig(app_dir).app).load()
    assert _file.non_finite({"a": [1.0, {"b": [2.0, math.nan]}]}, "data") == "data.a[1].b[1] = nan"
    assert _file.non_finite({"a": [1, "x", 2.5]}, "data") is None


def test_a_non_finite_running_value_fails_the_checkpoint_not_the_file(
    make_app: MakeApp, tmp_path: Path
) -> None:
    path = tmp_path / "r.retain"
    rig = Rig(_app_dir(make_app))
    store = RetainStore(path, rig.app)
    store.load()
    store.attach(rig.engine)
    rig.run_ms(600)
    assert store.flush()
    good_seq = _file.decode(path.read_bytes())["seq"]
    with structlog.testing.capture_logs() as logs:
        rig.program().pid.I = math.nan  # e.g. a diverged integral
        rig.run_ms(1600)
        assert store.flush()
    failed = [e for e in logs if e["event"] == "retain_checkpoint_failed"]
    reason = failed[0]["reason"]
    assert len(failed) == 1 and "data.variables.main.pid." in reason and "= nan" in reason
    assert store.errors >= 1 and store.failing
    assert _file.decode(path.read_bytes())["seq"] == good_seq  # the last good one stays
    stats = rig.engine.statistics()["retain"]
    assert stats["failing"] and stats["on_disk_seq"] == good_seq and "nan" in stats["last_error"]


def test_a_file_over_the_cap_is_refused_before_it_is_read(
    make_app: MakeApp, tmp_path: Path
) -> None:
    path = tmp_path / "r.retain"
    with path.open("wb") as f:
        f.truncate(3 << 30)  # sparse: 3 GiB that reading would have to allocate
    rig = Rig(_app_dir(make_app))
    store = RetainStore(path, rig.app)
    assert store.max_bytes == _file.size_cap(len(store.variables) + 1) < 16 << 20
    t0 = time.perf_counter()
    with pytest.raises(RetainError, match="3,221,225,472 bytes, more than"):
        store.load()
    assert time.perf_counter() - t0 < 2.0
    assert path.stat().st_size == 3 << 30


def test_a_checkpoint_over_the_cap_is_not_written(make_app: MakeApp, tmp_path: Path) -> None:
    path = tmp_path / "r.retain"
    rig = Rig(_app_dir(make_app))
    store = RetainStore(path, rig.app, max_bytes=200)
    store.load()
    store.attach(rig.engine)
    rig.run_ms(100)
    assert store.flush() and store.errors == 1 and store.written == 0
    assert "more than the 200 bytes" in store.last_error and not path.exists()


def _special(kind: str, path: Path, tmp_path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        (tmp_path / "real.retain").write_text("{}")
        path.symlink_to(tmp_path / "real.retain")
    else:
        path.symlink_to("/dev/zero")  # the symlink is refused before the device is opened


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink", "device"])
@pytest.mark.parametrize(
    ("mode", "on_bad"), [("warm", "refuse"), ("warm", "cold"), ("cold", "cold")]
)
def test_special_files_are_refused_in_every_mode_and_left_alone(
    make_app: MakeApp, tmp_path: Path, kind: str, mode: Any, on_bad: Any
) -> None:
    path = tmp_path / "r.retain"
    _special(kind, path, tmp_path)
    store = RetainStore(path, Rig(_app_dir(make_app)).app)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            store.load(mode=mode, on_bad=on_bad)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)  # a FIFO open must not block
    worker.start()
    worker.join(5.0)
    assert not worker.is_alive(), "load() blocked"
    assert isinstance(outcome[0], RetainError)
    message = str(outcome[0])
    assert str(path) in message
    assert ("symbolic link" if kind in ("symlink", "device") else "not a regular file") in message
    assert os.path.lexists(path) and not list(tmp_path.glob("*.bad-*"))  # never renamed


def test_the_previous_generation_is_judged_the_same_way(make_app: MakeApp, tmp_path: Path) -> None:
    app_dir, path = _good_file(make_app, tmp_path)
    prev = _file.prev_path(path)
    prev.unlink(missing_ok=True)
    os.mkfifo(prev)
    with pytest.raises(RetainError, match=r"r\.retain\.prev is a FIFO"):
        RetainStore(path, Rig(app_dir).app).load(mode="cold")


def test_check_writable_finds_what_a_checkpoint_would_hit(tmp_path: Path) -> None:
    _file.check_writable(tmp_path / "r.retain")
    assert not _file.tmp_path(tmp_path / "r.retain").exists()  # the probe is removed
    with pytest.raises(_file.PathError, match="does not exist"):
        _file.check_writable(tmp_path / "missing" / "r.retain")
    os.mkfifo(tmp_path / "f.retain.tmp")
    with pytest.raises(_file.PathError, match="FIFO"):
        _file.check_writable(tmp_path / "f.retain")
    (tmp_path / "d.retain.tmp").mkdir()
    with pytest.raises(_file.PathError, match="directory"):
        _file.check_writable(tmp_path / "d.retain")


def test_checkpoint_failures_are_reported_once_and_the_recovery_too(
    make_app: MakeApp, tmp_path: Path
) -> None:
    path = tmp_path / "r.retain"
    rig = Rig(_app_dir(make_app))
    store = RetainStore(path, rig.app)
    store.load()
    store.attach(rig.engine)
    rig.run_ms(100)
    assert store.flush() and store.written == 1  # the start-up checkpoint
    blocker = _file.tmp_path(path)
    blocker.mkdir()  # every write now fails where it starts: like a full or read-only disk
    with structlog.testing.capture_logs() as logs:
        rig.run_ms(2100)
        assert store.flush()
        failing = store.statistics()
        blocker.rmdir()
        rig.run_ms(3100)
        assert store.flush()
    events = [e["event"] for e in logs if e["event"].startswith("retain_checkpoint")]
    assert events == ["retain_checkpoint_failed", "retain_checkpoint_recovered"]
    assert failing["failing"] and failing["errors"] >= 1 and failing["on_disk_seq"] == 1
    assert "Is a directory" in failing["last_error"]
    after = store.statistics()
    assert not after["failing"] and after["failure_episodes"] == 1
    assert after["on_disk_seq"] == _file.decode(path.read_bytes())["seq"] > 1


def test_the_first_checkpoint_is_taken_at_start_up(make_app: MakeApp, tmp_path: Path) -> None:
    path = tmp_path / "r.retain"
    rig = Rig(_app_dir(make_app))
    store = RetainStore(path, rig.app)
    store.load()
    store.attach(rig.engine)
    rig.run_ms(10)  # one cycle, far below the 0.5 s interval
    assert store.flush()
    doc = _file.decode(path.read_bytes())
    assert doc["seq"] == 1 and doc["app_time_s"] == 0.0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["data"].__setitem__("variables", 2**31), "'data.variables' is not a mapping"),
        (lambda d: d["data"].__setitem__("parameters", None), "'data.parameters' is not a mapping"),
        (lambda d: d.__setitem__("app_time_s", "soon"), "'app_time_s' is not a number"),
        (lambda d: d.__setitem__("app_time_s", 1e300), "'app_time_s' is 1e\\+300: expected"),
        (lambda d: d.__setitem__("app_time_s", -1), "'app_time_s' is -1: expected"),
        (lambda d: d.__setitem__("saved_at", 5), "'saved_at' is not a text"),
        (lambda d: d.__setitem__("seq", -3), "'seq' is not a non-negative integer"),
        (lambda d: d.__setitem__("seq", True), "'seq' is not a non-negative integer"),
        # the merge's and the clock's parts (found by make fuzz: TypeError in plan_warm_start)
        (lambda d: d["data"].__setitem__("initials", [1]), "'data.initials' is not a mapping"),
        (
            lambda d: d["data"]["initials"].__setitem__("variables", False),
            "'data.initials.variables' is not a mapping",
        ),
        (
            lambda d: d["data"]["initials"].__setitem__("parameters", "x"),
            "'data.initials.parameters' is not a mapping",
        ),
        (lambda d: d["data"].__setitem__("clock", 1e-9), "'data.clock' is not a mapping"),
        (
            lambda d: d["data"]["clock"].__setitem__("ages", {"main.t.START": "abc"}),
            "'data.clock.ages.main.t.START' is not an age",
        ),
        (
            lambda d: d["data"]["clock"].__setitem__("ages", {"main.t.START": [1, 2**70]}),
            "'data.clock.ages.main.t.START' is not an age",
        ),
        (
            lambda d: d["data"]["clock"].__setitem__("app_time_ns", None),
            "'data.clock.app_time_ns' is not a number",
        ),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused_like_a_corrupt_one(
    make_app: MakeApp, tmp_path: Path, edit: Any, message: str
) -> None:
    app_dir, path = _good_file(make_app, tmp_path)
    _rewrite(path, edit)
    with pytest.raises(RetainError, match=message):
        RetainStore(path, Rig(app_dir).app).load()

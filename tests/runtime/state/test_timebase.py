"""Durations retained as durations: timers, phase state time and alarm delays across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime import ScanEngine, VirtualClock, load_app
from runtime.state import RetainStore, _file
from tests.conftest import MakeApp
from tests.runtime.state.helpers import manifest

LOGIC = """
from runtime import Program
from runtime.blocks import ALARM, PHASE, TON

class Main(Program):
    VARS = {"since": 0, "go": False}
    CLOCK_VARS = ("since",)

    def __init__(self, app):
        super().__init__(app)
        self.x = app.point("X")
        self.timer = TON(PT=5.0)
        self.phase = PHASE(AUTO_COMPLETE_ACTING=True)
        self.alarm = ALARM(H=1.0, H_EN=True, DELAY=4.0)

    def execute(self, ctx):
        self.go = self.go or ctx.now_ns >= 1_000_000_000
        self.timer(ctx, IN=self.go)
        if ctx.first_scan and self.phase.STATE_NAME == "IDLE":
            self.phase.command("START")
            self.since = ctx.now_ns
        self.phase(ctx)
        self.alarm(ctx, IN=self.x.value)
"""
RETAIN = {"variables": ["main"], "interval_s": 1}
DRIVERS = {
    "mem": {
        "type": "memory",
        "options": {"channels": {"x": "in", "y": "out"}, "initial": {"x": 2.0}},
    }
}


class Runtime:
    """One power-on of the app: a fresh engine whose app time starts at 0."""

    def __init__(self, app_dir: Path, path: Path, **load: Any) -> None:
        self.app = load_app(app_dir)
        self.engine = ScanEngine(self.app, clock=VirtualClock())
        self.store = RetainStore(path, self.app)
        self.report = self.store.load(**load)
        self.store.attach(self.engine)
        self.engine.start()
        self.main: Any = self.app.programs["main"]

    def run_s(self, seconds: float) -> None:
        self.engine.run_until(round(seconds * 1e9))

    def power_off(self) -> None:
        self.engine.close()  # final checkpoint at the last cycle's app time


def _app(make_app: MakeApp) -> Path:
    return make_app(manifest(drivers=DRIVERS, retain=RETAIN, parameters=[]), LOGIC)


def test_timer_phase_and_alarm_continue_across_a_warm_restart(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app_dir, path = _app(make_app), tmp_path / "r.json"
    first = Runtime(app_dir, path)
    first.run_s(3.0)  # last cycle at 2.99 s: the timer has run 1.99 s of its 5 s
    main = first.main
    assert main.timer.ET > 1.9 and not main.timer.Q
    state_time, alarm_since = main.phase.STATE_TIME, main.alarm.SINCE_NS[1]
    assert not main.alarm.H_ACTIVE  # its 4 s delay runs since 0 s
    first.power_off()

    second = Runtime(app_dir, path)
    main = second.main
    assert second.report.started == "warm"
    assert main.timer.START_NS == -1_990_000_000 and main.phase.SINCE_NS == -2_990_000_000
    second.run_s(0.005)  # one cycle at app time 0: every elapsed time goes on from 2.99 s
    assert main.phase.STATE_TIME == state_time == 2.99
    assert main.timer.ET == 1.99 and not main.timer.Q
    assert main.since == -2_990_000_000  # a program's own CLOCK_VARS too
    assert main.alarm.SINCE_NS[1] == alarm_since - 2_990_000_000
    second.run_s(1.005)  # 2.99 s + 1.00 s of the alarm's 4 s delay
    assert not main.alarm.H_ACTIVE and main.phase.STATE_TIME == 3.99
    second.run_s(1.015)
    assert main.alarm.H_ACTIVE


def test_timer_finishes_at_the_right_total_time(make_app: MakeApp, tmp_path: Path) -> None:
    app_dir, path = _app(make_app), tmp_path / "r.json"
    first = Runtime(app_dir, path)
    first.run_s(3.0)
    first.power_off()
    second = Runtime(app_dir, path)
    q_at = None
    for step in range(1, 500):
        second.run_s(step * 0.01)
        if second.main.timer.Q:
            q_at = second.engine.now_ns
            break
    # 2.99 − 1.00 = 1.99 s timed before; 5 s in all: Q at 3.01 s of the second runtime
    assert q_at == 3_010_000_000


def test_ages_are_stored_and_old_files_are_read_from_their_app_time(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app_dir, path = _app(make_app), tmp_path / "r.json"
    first = Runtime(app_dir, path)
    first.run_s(3.0)
    first.power_off()
    doc = _file.decode(path.read_bytes())
    clock = doc["data"]["clock"]
    assert clock["app_time_ns"] == 2_990_000_000
    assert clock["ages"]["main.timer.START_NS"] == 1_990_000_000
    assert "main.timer.START_NS" not in doc["data"]["variables"]
    # the same file as an older vplc wrote it: absolute stamps, PHASE pending as SINCE_NS < 0
    legacy = dict(doc)
    for key in ("format", "schema"):
        legacy.pop(key)
    variables = dict(doc["data"]["variables"])
    variables.pop("main.phase.PENDING")
    for p, age in clock["ages"].items():
        variables[p] = (
            [2_990_000_000 - a for a in age] if isinstance(age, list) else (2_990_000_000 - age)
        )
    legacy["data"] = {"variables": variables, "parameters": {}}
    path.write_bytes(_file.encode(legacy))
    second = Runtime(app_dir, path)
    main = second.main
    assert main.timer.START_NS == -1_990_000_000 and main.phase.PENDING is False
    assert any("converted to ages" in n for n in second.report.notes)

"""Bumpless: a PID continued across an online change, a snapshot restore or a warm restart."""

from __future__ import annotations

from pathlib import Path

from runtime.state import RetainStore, change_online, restore_snapshot, take_snapshot
from tests.conftest import MakeApp
from tests.runtime.state.helpers import Rig, manifest

PID_LOGIC = """
from runtime import Program
from runtime.blocks import PID

class Main(Program):
    def __init__(self, app):
        super().__init__(app)
        self.x = app.point("X")
        self.y = app.point("Y")
        self.sp = app.param("gain")
        self.pid = PID(KC=0.5, TI=1.5, TD=0.05, OUT_MIN=-50.0, OUT_MAX=50.0)

    def execute(self, ctx):
        self.pid(ctx, SP=self.sp.value, PV=self.x.value)
        self.y.value = self.pid.OUT
"""
FORGET = PID_LOGIC + "\n\ndef migrate(old_version, state):\n    return {}\n"
CHANGE_MS = 1500


def _outs(rig: Rig) -> list[float]:
    return [row[3] for row in rig.trace]


def _step_at(outs: list[float], k: int) -> tuple[float, float]:
    """(|ΔOUT| at cycle k, largest |ΔOUT| over the 10 cycles before it)."""
    before = max(abs(outs[i] - outs[i - 1]) for i in range(k - 10, k))
    return abs(outs[k] - outs[k - 1]), before


def _pid_app(make_app: MakeApp, version: str = "1.0.0", logic: str = PID_LOGIC) -> Path:
    return make_app(manifest(version, retain={"variables": ["main.pid"]}), logic)


def test_pid_across_online_change_does_not_kick(make_app: MakeApp) -> None:
    k = CHANGE_MS // 10  # index of the first cycle run by the new version
    straight = Rig(_pid_app(make_app))
    straight.run_ms(2000)
    rig = Rig(_pid_app(make_app))
    rig.run_ms(CHANGE_MS)
    assert abs(rig.program().pid.I) > 0.3  # the integrator holds real state worth keeping
    report = change_online(rig.engine, _pid_app(make_app, "1.0.1"))
    rig.run_ms(2000)
    assert report.status == "committed"
    assert _outs(rig) == _outs(straight)
    step, usual = _step_at(_outs(rig), k)
    assert step <= 1.5 * usual

    # Control: the same change with the state thrown away kicks the output.
    forgetful = Rig(_pid_app(make_app))
    forgetful.run_ms(CHANGE_MS)
    change_online(forgetful.engine, _pid_app(make_app, "1.0.2", FORGET))
    forgetful.run_ms(2000)
    kick, usual = _step_at(_outs(forgetful), k)
    assert kick > 10 * usual


def test_pid_across_snapshot_restore_does_not_kick(make_app: MakeApp) -> None:
    app_dir = _pid_app(make_app)
    straight = Rig(app_dir)
    straight.run_ms(2000)
    first = Rig(app_dir)
    first.run_ms(CHANGE_MS)
    restored = Rig(app_dir)
    restore_snapshot(restored.engine, take_snapshot(first.engine))
    restored.run_ms(2000)
    assert _outs(first) + _outs(restored) == _outs(straight)


def test_pid_across_warm_restart_does_not_kick(make_app: MakeApp, tmp_path: Path) -> None:
    app_dir = _pid_app(make_app)
    path = tmp_path / "retain.json"

    def restart(mode: str) -> float:
        """|ΔOUT| between the last cycle before a restart and the first one after it."""
        first = Rig(app_dir)
        store = RetainStore(path, first.app)
        store.load(mode="cold")
        store.attach(first.engine)
        first.run_ms(CHANGE_MS)
        last_out = first.driver.values["y"]
        plant = dict(first.driver.values)  # the plant keeps its state across our restart
        first.engine.close()
        second = Rig(app_dir)
        RetainStore(path, second.app).load(mode=mode)  # type: ignore[arg-type]
        second.driver.values.update(plant)
        second.run_ms(10)
        return abs(second.driver.values["y"] - last_out)

    straight = Rig(app_dir)
    straight.run_ms(CHANGE_MS + 10)
    _, usual = _step_at(_outs(straight), len(straight.trace) - 1)
    assert restart("warm") <= 1.5 * usual
    assert restart("cold") > 10 * usual

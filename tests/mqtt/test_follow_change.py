"""Telemetry follows an online change: the scan-side tap and frame writer read the new version.

Before, both kept the old version's ALARM, PHASE and parameter objects: after an online change
an operator's parameter write went to the new version and telemetry went on showing the old.
"""

from __future__ import annotations

from typing import Any

from runtime.front import frame_hub
from runtime.mqtt._tap import KIND_ALARM, KIND_PARAM, TelemetryTap
from runtime.state import change_online
from tests.conftest import MakeApp
from tests.runtime.core.test_instances import WITH_ALARM
from tests.runtime.front.test_hub import texts_of
from tests.runtime.state.helpers import Rig, state_app


def _changed(rig: Rig, make_app: MakeApp) -> Any:
    report = change_online(rig.engine, state_app(make_app, "1.0.1", WITH_ALARM))
    rig.run_ms(rig.engine.now_ns // 1_000_000 + 30)
    assert report.status == "committed", report.reason
    return rig.engine.app


def test_the_tap_reads_the_new_versions_alarms_and_parameters(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app, logic=WITH_ALARM))
    tap = TelemetryTap.for_engine(rig.engine, deadbands={}, sample_ns=0, capacity=100_000)
    rig.engine.add_cycle_hook(tap)
    rig.run_ms(50)
    old_alarm = tap.alarms[0][1]
    new = _changed(rig, make_app)
    tap.queue.clear()
    new.parameters["gain"].value = 3.0  # as an operator's set_parameter would, on the new app
    rig.driver.values["x"] = 1.0  # the new version's alarm goes active
    rig.run_ms(rig.engine.now_ns // 1_000_000 + 30)
    [(path, alarm)] = tap.alarms
    assert path == "main.high" and alarm is new.tree.find("main.high") and alarm is not old_alarm
    assert tap.params[0][1] is new.parameters["gain"]
    kinds = {(item[0], item[1]): item[2] for item in tap.queue}
    assert kinds[(KIND_PARAM, 0)] == 3.0
    assert kinds[(KIND_ALARM, 0)][0] is True  # ACTIVE, sampled from the new block


def test_the_frame_writer_reads_the_new_versions_instances(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app, logic=WITH_ALARM))
    feed = frame_hub(rig.engine).subscribe(0)
    try:
        rig.run_ms(50)
        new = _changed(rig, make_app)
        new.parameters["gain"].value = 4.0
        rig.run_ms(rig.engine.now_ns // 1_000_000 + 30)
        layout = feed.layout()  # what a child (re)spawned now is told, slot by slot
        assert layout.alarms[0][1] is new.tree.find("main.high")
        assert layout.params[0][1] is new.parameters["gain"]
        assert ("param", 0, 4.0) in texts_of(feed)
    finally:
        feed.close()

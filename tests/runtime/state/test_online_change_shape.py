"""Online changes that change the app's shape: points added and removed, task periods."""

from __future__ import annotations

from typing import Any

import pytest

from runtime import ScanEngine, VirtualClock, load_app
from runtime.state import OnlineChangeError, change_online, prepare_change
from tests.conftest import MakeApp
from tests.runtime.state.helpers import Rig, manifest

CHANNELS = {"x": "in", "y": "out", "z": "out", "w": "in"}
DRIVERS = {"mem": {"type": "memory", "options": {"channels": CHANNELS, "initial": {"w": 4.0}}}}


def _point(name: str, direction: str, channel: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "LREAL",
        "direction": direction,
        "driver": "mem",
        "channel": channel,
    } | kw


POINTS_V1 = [
    _point("X", "in", "x"),
    _point("Y", "out", "y", safe=-1.0),
    _point("Z", "out", "z", safe=0.5),
]
POINTS_V2 = [_point("X", "in", "x"), _point("Y", "out", "y", safe=-1.0), _point("W", "in", "w")]

LOGIC_V1 = """
from runtime import Program

class Main(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.y = app.point("Y")
        self.z = app.point("Z")

    def execute(self, ctx):
        self.count += 1
        self.y.value = float(self.count)
        self.z.value = 9.0
"""
LOGIC_V2 = """
from runtime import Program

class Main(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.y = app.point("Y")
        self.w = app.point("W")

    def execute(self, ctx):
        self.count += 1
        self.y.value = 100.0 + self.w.value
"""


def _app(make_app: MakeApp, version: str, points: list[dict[str, Any]], logic: str) -> Any:
    return make_app(manifest(version, drivers=DRIVERS, points=points), logic)


def test_points_added_and_removed_on_a_driver_that_rebinds(make_app: MakeApp) -> None:
    rig = Rig(_app(make_app, "1.0.0", POINTS_V1, LOGIC_V1))
    rig.run_ms(100)
    values = rig.driver.values
    assert values["z"] == 9.0 and values["y"] == 10.0
    writes = rig.driver.writes
    report = change_online(rig.engine, _app(make_app, "1.1.0", POINTS_V2, LOGIC_V2))
    # the removed output was driven to its safe value and written once, before the switch
    assert values["z"] == 0.5 and rig.driver.writes == writes + 1
    assert (report.points_added, report.points_removed) == (["W"], ["Z"])
    rig.run_ms(200)
    assert report.status == "committed"
    assert values["y"] == 104.0  # the new input is latched and used
    assert values["z"] == 0.5  # nobody writes the removed point any more
    assert "Z" not in rig.engine.image and rig.engine.image["W"].value == 4.0
    assert rig.program().count == 20  # the state went over


def test_a_fallback_restores_the_points_too(make_app: MakeApp) -> None:
    failing = LOGIC_V2.replace("self.count += 1\n", "self.count += 1\n        raise KeyError(1)\n")
    rig = Rig(_app(make_app, "1.0.0", POINTS_V1, LOGIC_V1))
    rig.run_ms(100)
    report = change_online(rig.engine, _app(make_app, "1.1.0", POINTS_V2, failing))
    rig.run_ms(200)
    assert report.status == "fell_back" and rig.version == "1.0.0"
    assert "Z" in rig.engine.image and "W" not in rig.engine.image
    assert rig.driver.values["z"] == 9.0  # the old version drives it again
    assert rig.program().count == 20


def test_a_point_on_an_unknown_channel_or_a_changed_point_is_refused(make_app: MakeApp) -> None:
    rig = Rig(_app(make_app, "1.0.0", POINTS_V1, LOGIC_V1))
    wrong = [*POINTS_V1, _point("Q", "in", "nope")]
    with pytest.raises(OnlineChangeError, match=r"point 'Q': driver 'mem' has no channel 'nope'"):
        prepare_change(rig.engine, _app(make_app, "1.1.0", wrong, LOGIC_V1))
    changed = [POINTS_V1[0], POINTS_V1[1] | {"safe": 0.0}, POINTS_V1[2]]
    with pytest.raises(OnlineChangeError, match=r"point 'Y' changes safe"):
        prepare_change(rig.engine, _app(make_app, "1.1.0", changed, LOGIC_V1))


def test_a_driver_that_cannot_rebind_is_named(make_app: MakeApp) -> None:
    mqtt = {
        "io": {
            "type": "mqtt",
            "options": {"prefix": "t/io", "channels": {"a": "in", "b": "out", "c": "in"}},
        }
    }
    points = [
        {"name": "A", "type": "LREAL", "direction": "in", "driver": "io", "channel": "a"},
        {
            "name": "B",
            "type": "LREAL",
            "direction": "out",
            "driver": "io",
            "channel": "b",
            "safe": 0.0,
        },
    ]
    logic = "from runtime import Program\n\nclass Main(Program):\n    pass\n"
    app = load_app(make_app(manifest(drivers=mqtt, points=points, parameters=[]), logic))
    engine = ScanEngine(app, clock=VirtualClock())  # never opened: no broker needed
    more = [
        *points,
        {"name": "C", "type": "LREAL", "direction": "in", "driver": "io", "channel": "c"},
    ]
    new = make_app(manifest("1.1.0", drivers=mqtt, points=more, parameters=[]), logic)
    with pytest.raises(
        OnlineChangeError, match=r"driver 'io' \(C\): MqttDriver cannot bind points while running"
    ):
        prepare_change(engine, new)


def test_a_changed_period_starts_at_the_next_release_without_a_burst(make_app: MakeApp) -> None:
    rig = Rig(_app(make_app, "1.0.0", POINTS_V1, LOGIC_V1))
    rig.run_ms(95)  # the last cycle ran at 90 ms; 100 ms is scheduled
    tasks = [{"name": "fast", "period_ms": 25, "programs": ["main"]}]
    v2 = make_app(manifest("1.1.0", drivers=DRIVERS, points=POINTS_V1, tasks=tasks), LOGIC_V1)
    report = change_online(rig.engine, v2)
    assert report.retimed == {"fast": [10.0, 25.0]}
    rig.run_ms(200)
    times = [row[0] // 1_000_000 for row in rig.trace]
    assert times[-8:] == [60, 70, 80, 90, 100, 125, 150, 175]
    assert report.status == "committed" and rig.engine.tasks[0].period_ns == 25_000_000


def test_a_fallback_restores_the_period(make_app: MakeApp) -> None:
    failing = LOGIC_V1.replace("self.count += 1\n", "self.count += 1\n        raise KeyError(1)\n")
    rig = Rig(_app(make_app, "1.0.0", POINTS_V1, LOGIC_V1))
    rig.run_ms(95)
    tasks = [{"name": "fast", "period_ms": 25, "programs": ["main"]}]
    v2 = make_app(manifest("1.1.0", drivers=DRIVERS, points=POINTS_V1, tasks=tasks), failing)
    report = change_online(rig.engine, v2)
    rig.run_ms(140)
    assert report.status == "fell_back"
    assert [row[0] // 1_000_000 for row in rig.trace][-4:] == [100, 110, 120, 130]


def test_a_new_task_is_refused(make_app: MakeApp) -> None:
    rig = Rig(_app(make_app, "1.0.0", POINTS_V1, LOGIC_V1))
    tasks = [
        {"name": "fast", "period_ms": 10, "programs": ["main"]},
        {"name": "slow", "period_ms": 50, "programs": ["other"]},
    ]
    programs = [{"name": "main", "entry": "logic:Main"}, {"name": "other", "entry": "logic:Main"}]
    v2 = manifest("1.1.0", drivers=DRIVERS, points=POINTS_V1, tasks=tasks, programs=programs)
    with pytest.raises(OnlineChangeError, match=r"tasks \['fast', 'slow'\] differ .* a restart"):
        prepare_change(rig.engine, make_app(v2, LOGIC_V1))


def test_the_fastest_task_must_stay_the_fastest(make_app: MakeApp) -> None:
    two = [
        {"name": "fast", "period_ms": 10, "programs": ["main"]},
        {"name": "slow", "period_ms": 50, "programs": ["other"]},
    ]
    programs = [{"name": "main", "entry": "logic:Main"}, {"name": "other", "entry": "logic:Main"}]
    kw = {"drivers": DRIVERS, "points": POINTS_V1, "programs": programs}
    rig = Rig(make_app(manifest(tasks=two, **kw), LOGIC_V1))
    swapped = [two[0] | {"period_ms": 100}, two[1]]
    with pytest.raises(OnlineChangeError, match="the fastest task would become 'slow'"):
        prepare_change(rig.engine, make_app(manifest("1.1.0", tasks=swapped, **kw), LOGIC_V1))


LOGIC_V3 = """
from runtime import Program

class Main(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.y = app.point("Y")
        self.z = app.point("Z")
        self.v = app.point("V")

    def execute(self, ctx):
        self.count += 1
        self.y.value = float(self.count)
        self.z.value = 9.0
        self.v.value = float("nan") if self.count % 2 else 1e9
"""


def test_an_output_added_online_is_checked_like_the_others(make_app: MakeApp) -> None:
    channels = {**CHANNELS, "v": "out"}
    drivers = {"mem": {"type": "memory", "options": {"channels": channels}}}
    v1 = make_app(manifest("1.0.0", drivers=drivers, points=POINTS_V1), LOGIC_V1)
    rig = Rig(v1)
    rig.run_ms(50)
    points = [*POINTS_V1, _point("V", "out", "v", safe=0.0, range=[0.0, 10.0])]
    v3 = make_app(manifest("1.1.0", drivers=drivers, points=points), LOGIC_V3)
    report = change_online(rig.engine, v3)
    rig.run_ms(100)
    assert report.status == "committed"
    # NaN holds the last good value (the safe 0.0 at first), 1e9 is clamped to the range
    assert rig.driver.values["v"] in (0.0, 10.0)
    assert rig.engine.statistics()["outputs"]["invalid_writes"] > 0


def test_a_changed_period_keeps_the_operators_spin_override(make_app: MakeApp) -> None:
    """``--spin-us`` tunes the machine, not the app: a retimed task keeps it; the app's own
    ``spin_us`` applies only where no override was given."""
    rig = Rig(_app(make_app, "1.0.0", POINTS_V1, LOGIC_V1))
    rig.engine.set_realtime(spin_us=150)
    rig.run_ms(35)
    tasks = [{"name": "fast", "period_ms": 25, "spin_us": 40, "programs": ["main"]}]
    v2 = make_app(manifest("1.1.0", drivers=DRIVERS, points=POINTS_V1, tasks=tasks), LOGIC_V1)
    report = change_online(rig.engine, v2)
    rig.run_ms(60)
    task = rig.engine.tasks[0]
    assert report.status == "committed" and task.period_ns == 25_000_000
    assert task.spin_ns == 150_000

    plain = Rig(_app(make_app, "1.0.0", POINTS_V1, LOGIC_V1))
    plain.run_ms(35)
    change_online(plain.engine, v2)
    plain.run_ms(60)
    assert plain.engine.tasks[0].spin_ns == 40_000

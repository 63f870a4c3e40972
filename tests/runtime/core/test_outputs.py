"""Output writes are coerced to their IEC type; invalid ones follow on_invalid, never a driver."""

from __future__ import annotations

import math
from typing import Any

import pytest
from structlog.testing import capture_logs

import runtime.core._outputs as outputs_module
from hal import MemoryDriver, Point, PointSpec
from runtime import RuntimeState, ScanEngine, VirtualClock, load_app
from tests.conftest import MakeApp, memory_manifest

SCANS = {"python": outputs_module.PyOutputScan}
if outputs_module.IMPLEMENTATION == "cython":
    from runtime.core._outscan import OutputScan

    SCANS["cython"] = OutputScan


@pytest.fixture(autouse=True, params=sorted(SCANS))
def scan_implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every engine test runs with the compiled scan and with its Python reference."""
    monkeypatch.setattr(outputs_module, "Scan", SCANS[request.param])
    return str(request.param)


WRITER_LOGIC = """
from runtime import Program

WRITES = {}  # point name -> value, written every cycle (the test edits it between runs)

class Writer(Program):
    def __init__(self, app):
        super().__init__(app)
        self.points = {n: app.point(n) for n in ("B", "I", "R", "L", "S")}

    def execute(self, ctx):
        for name, value in WRITES.items():
            self.points[name].value = value
"""

OUTPUTS: list[dict[str, Any]] = [
    {"name": "B", "type": "BOOL", "safe": False},
    {"name": "I", "type": "INT", "safe": 0, "range": [0, 100]},
    {"name": "R", "type": "REAL", "safe": 0.0, "range": [-10, 10]},
    {"name": "L", "type": "LREAL", "safe": 1.5},
    {"name": "S", "type": "STRING", "safe": "idle"},
    {"name": "U", "type": "LREAL", "safe": 2.0},  # no program asks for it
]


def _engine(make_app: MakeApp, **policies: str) -> tuple[ScanEngine, MemoryDriver, Any]:
    channels = {o["name"].lower(): "out" for o in OUTPUTS}
    points = [
        o
        | {"direction": "out", "driver": "mem", "channel": o["name"].lower()}
        | ({"on_invalid": policies[o["name"]]} if o["name"] in policies else {})
        for o in OUTPUTS
    ]
    manifest = memory_manifest(
        drivers={"mem": {"type": "memory", "options": {"channels": channels}}},
        programs=[{"name": "writer", "entry": "logic:Writer"}],
        tasks=[{"name": "fast", "period_ms": 10, "programs": ["writer"]}],
        points=points,
        parameters=[],
    )
    app = load_app(make_app(manifest, WRITER_LOGIC))
    engine = ScanEngine(app, clock=VirtualClock())
    engine.start()
    driver = app.drivers["mem"]
    assert isinstance(driver, MemoryDriver)
    module = __import__(f"{app.package}.logic", fromlist=["x"])
    return engine, driver, module


def _run(engine: ScanEngine, mod: Any, writes: dict[str, Any], cycles: int = 1) -> None:
    mod.WRITES.clear()
    mod.WRITES.update(writes)
    start = engine.fastest.stats.cycles
    engine.run_until((start + cycles) * 10_000_000)
    assert engine.fastest.stats.cycles == start + cycles


@pytest.mark.parametrize(
    ("point", "written", "sent"),
    [
        ("B", True, True),
        ("B", 1, True),
        ("B", 0.0, False),
        ("I", 42, 42),
        ("I", 3.7, 4),  # REAL_TO_INT rounds to the nearest
        ("I", 2.5, 2),  # ties to even
        ("I", True, 1),
        ("R", 2, 2.0),
        ("L", 7, 7.0),
        ("S", "run", "run"),
    ],
)
def test_valid_writes_are_coerced_to_the_iec_type(
    make_app: MakeApp, point: str, written: Any, sent: Any
) -> None:
    engine, driver, mod = _engine(make_app)
    _run(engine, mod, {point: written})
    value = driver.values[point.lower()]
    assert value == sent and type(value) is type(sent)
    assert engine.statistics()["outputs"]["invalid_writes"] == 0


def test_negative_zero_passes_unchanged(make_app: MakeApp) -> None:
    engine, driver, mod = _engine(make_app)
    _run(engine, mod, {"R": -0.0, "I": -0.0})
    assert math.copysign(1.0, driver.values["r"]) == -1.0
    assert driver.values["i"] == 0 and type(driver.values["i"]) is int


@pytest.mark.parametrize(
    ("point", "good", "bad", "sent"),
    [
        ("I", 50, 1e9, 100),  # out of range: the nearest limit
        ("I", 50, -7, 0),
        ("R", 1.0, 11.5, 10.0),
        ("R", 1.0, math.inf, 10.0),  # a declared range gives ±inf a nearest value
        ("R", 1.0, -math.inf, -10.0),
        ("R", 1.0, math.nan, 1.0),  # no nearest value: hold the last good one
        ("L", 3.0, math.inf, 3.0),  # no range: inf has no nearest value either
        ("L", 3.0, None, 3.0),
        ("B", True, 0.7, True),
        ("B", True, 2, True),
        ("S", "run", 5, "run"),
    ],
)
def test_clamp_policy(make_app: MakeApp, point: str, good: Any, bad: Any, sent: Any) -> None:
    engine, driver, mod = _engine(make_app)
    _run(engine, mod, {point: good})
    _run(engine, mod, {point: bad}, cycles=3)
    value = driver.values[point.lower()]
    assert value == sent and type(value) is type(sent)
    stats = engine.statistics()["outputs"]
    assert stats["invalid_writes"] == 3 and stats["invalid_episodes"] == 1
    assert stats["invalid_now"] == [point]
    assert stats["points"][point]["policy"] == "clamp"
    assert engine.state is RuntimeState.RUN


def test_hold_policy_keeps_the_last_good_value(make_app: MakeApp) -> None:
    engine, driver, mod = _engine(make_app, I="hold")
    _run(engine, mod, {"I": 50})
    _run(engine, mod, {"I": 1e9}, cycles=2)
    assert driver.values["i"] == 50
    _run(engine, mod, {"I": 60})
    assert driver.values["i"] == 60
    assert engine.statistics()["outputs"]["invalid_now"] == []


def test_fault_policy_faults_with_safe_outputs_in_the_same_cycle(make_app: MakeApp) -> None:
    engine, driver, mod = _engine(make_app, R="fault")
    _run(engine, mod, {"R": 5.0, "L": 9.0})
    _run(engine, mod, {"R": math.nan, "L": 9.0})
    assert engine.state is RuntimeState.FAULT
    assert "output 'R' written nan by writer" in engine.fault_reason
    assert driver.values["r"] == 0.0 and driver.values["l"] == 1.5  # every output safe


def test_an_episode_is_logged_once_at_its_start_and_once_at_its_end(make_app: MakeApp) -> None:
    engine, _, mod = _engine(make_app)
    with capture_logs() as logs:
        _run(engine, mod, {"I": 1e9}, cycles=5)
        _run(engine, mod, {"I": 5}, cycles=2)
        _run(engine, mod, {"I": -1}, cycles=2)
    events = [e for e in logs if e["event"].startswith("output_")]
    assert [e["event"] for e in events] == [
        "output_invalid",
        "output_valid_again",
        "output_invalid",
    ]
    first = events[0]
    assert first["point"] == "I" and first["programs"] == ["writer"] and first["task"] == "fast"
    assert first["action"] == "clamped to 100" and "1000000000.0" in first["written"]
    assert events[1]["invalid_writes"] == 5
    stats = engine.statistics()["outputs"]
    assert stats["invalid_writes"] == 7 and stats["points"]["I"]["episodes"] == 2


def test_an_output_no_program_asked_for_is_still_checked(make_app: MakeApp) -> None:
    engine, driver, mod = _engine(make_app)
    _run(engine, mod, {})
    engine.image["U"].value = math.inf  # e.g. a command or a program that kept a reference
    _run(engine, mod, {})
    assert driver.values["u"] == 2.0


def test_forced_values_are_coerced_and_checked() -> None:
    out = Point(
        PointSpec(
            name="I", type="INT", direction="out", driver="m", channel="i", safe=0, range=(0, 100)
        )
    )
    out.force(3.0)
    assert out.forced_value == 3 and type(out.forced_value) is int
    for bad in (101, 3.5, math.nan, "x"):
        with pytest.raises((TypeError, ValueError)):
            out.force(bad)
    flag = Point(
        PointSpec(name="B", type="BOOL", direction="out", driver="m", channel="b", safe=False)
    )
    flag.force(1)
    assert flag.forced_value is True
    with pytest.raises(TypeError):
        flag.force(0.7)
    real = Point(PointSpec(name="R", type="REAL", direction="in", driver="m", channel="r"))
    with pytest.raises(ValueError, match="finite"):
        real.force(math.inf)
    with pytest.raises(ValueError, match="REAL range"):
        real.force(1e39)

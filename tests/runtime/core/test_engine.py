"""Scan-engine rules on the virtual clock: deadlines, priorities, overrun policies, faults."""

from __future__ import annotations

from typing import Any

from hal import MemoryDriver
from runtime import RuntimeState, ScanEngine, VirtualClock, load_app
from tests.conftest import COPY_LOGIC, MakeApp, memory_manifest

RECORD_LOGIC = """
from runtime import Program

LOG = []

class Rec(Program):
    def __init__(self, app):
        super().__init__(app)
        self.y = app.point("Y")

    def execute(self, ctx):
        LOG.append((type(self).__name__, ctx.task, ctx.now_ns, ctx.cycle, ctx.dt))

class A(Rec):
    pass

class B(Rec):
    pass
"""


def _engine(make_app: MakeApp, manifest: dict[str, Any], logic: str) -> tuple[ScanEngine, Any]:
    app = load_app(make_app(manifest, logic))
    engine = ScanEngine(app, clock=VirtualClock())
    engine.start()
    module = __import__(f"{app.package}.logic", fromlist=["x"])
    return engine, module


def _two_tasks(fast: dict[str, Any], slow: dict[str, Any]) -> dict[str, Any]:
    return memory_manifest(
        programs=[{"name": "a", "entry": "logic:A"}, {"name": "b", "entry": "logic:B"}],
        tasks=[fast | {"programs": ["a"]}, slow | {"programs": ["b"]}],
    )


def test_releases_on_absolute_deadlines_without_drift(make_app: MakeApp) -> None:
    manifest = _two_tasks({"name": "t3", "period_ms": 3}, {"name": "t7", "period_ms": 7})
    engine, mod = _engine(make_app, manifest, RECORD_LOGIC)
    engine.run_until(1_000_000_000)
    a = [e for e in mod.LOG if e[0] == "A"]
    b = [e for e in mod.LOG if e[0] == "B"]
    assert [e[2] for e in a] == [k * 3_000_000 for k in range(334)]
    assert [e[2] for e in b] == [k * 7_000_000 for k in range(143)]
    assert a[0][4] == 0.0 and a[1][4] == 0.003
    assert engine.tasks[0].stats.cycles == 334
    assert engine.tasks[0].stats.overruns == 0


def test_higher_priority_runs_first_at_a_shared_release(make_app: MakeApp) -> None:
    manifest = _two_tasks(
        {"name": "low", "period_ms": 10, "priority": 5},
        {"name": "high", "period_ms": 20, "priority": 50},
    )
    engine, mod = _engine(make_app, manifest, RECORD_LOGIC)
    engine.run_until(100_000_000)
    at_zero = [e[0] for e in mod.LOG if e[2] == 0]
    at_20 = [e[0] for e in mod.LOG if e[2] == 20_000_000]
    assert at_zero == ["B", "A"]
    assert at_20 == ["B", "A"]
    assert [e[0] for e in mod.LOG if e[2] == 10_000_000] == ["A"]


def test_equal_priority_runs_in_declaration_order(make_app: MakeApp) -> None:
    manifest = _two_tasks(
        {"name": "first", "period_ms": 10, "priority": 7},
        {"name": "second", "period_ms": 10, "priority": 7},
    )
    engine, mod = _engine(make_app, manifest, RECORD_LOGIC)
    engine.run_until(30_000_000)
    assert [e[0] for e in mod.LOG] == ["A", "B"] * 3


SLOW_LOGIC = """
from runtime import Program

class Main(Program):
    SLOW_AT = {3}
    COST_NS = 25_000_000
    clock = None
    starts = []

    def execute(self, ctx):
        Main.starts.append(ctx.now_ns)
        if ctx.cycle in Main.SLOW_AT:
            Main.clock.charge(Main.COST_NS)
"""


def _overrun_run(make_app: MakeApp, policy: str) -> tuple[ScanEngine, Any]:
    manifest = memory_manifest(
        tasks=[{"name": "fast", "period_ms": 10, "overrun": policy, "programs": ["main"]}]
    )
    engine, mod = _engine(make_app, manifest, SLOW_LOGIC)
    mod.Main.clock = engine.clock
    engine.run_until(100_000_000)
    return engine, mod


def test_overrun_warn_runs_the_pending_release_late_and_drops_older(make_app: MakeApp) -> None:
    engine, mod = _overrun_run(make_app, "warn")
    # cycle 3 is released at 20 ms and ends at 45 ms: 30 ms is dropped, 40 ms runs late.
    assert mod.Main.starts[:5] == [0, 10_000_000, 20_000_000, 40_000_000, 50_000_000]
    stats = engine.tasks[0].stats
    assert (stats.overruns, stats.skipped) == (1, 1)
    assert stats.latency_hist.max == 5_000_000
    assert engine.state is RuntimeState.RUN


def test_overrun_skip_never_runs_late(make_app: MakeApp) -> None:
    engine, mod = _overrun_run(make_app, "skip")
    assert mod.Main.starts[:4] == [0, 10_000_000, 20_000_000, 50_000_000]
    stats = engine.tasks[0].stats
    assert (stats.overruns, stats.skipped) == (1, 2)
    assert stats.latency_hist.max == 0


def test_overrun_fault_goes_safe(make_app: MakeApp) -> None:
    engine, mod = _overrun_run(make_app, "fault")
    assert engine.state is RuntimeState.FAULT
    assert "overran" in engine.fault_reason
    driver = engine.app.drivers["mem"]
    assert isinstance(driver, MemoryDriver)
    assert driver.values["y"] == -1.0
    assert len(mod.Main.starts) == 3  # no program runs in FAULT


def test_watchdog_counts_long_execution_as_overrun(make_app: MakeApp) -> None:
    manifest = memory_manifest(
        tasks=[{"name": "fast", "period_ms": 100, "watchdog_ms": 10, "programs": ["main"]}]
    )
    engine, mod = _engine(make_app, manifest, SLOW_LOGIC)
    mod.Main.clock = engine.clock
    mod.Main.COST_NS = 20_000_000
    engine.run_until(1_000_000_000)
    assert engine.tasks[0].stats.overruns == 1
    assert engine.tasks[0].stats.skipped == 0


RAISING_LOGIC = """
from runtime import Program

class Main(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.y = app.point("Y")

    def execute(self, ctx):
        self.count += 1
        self.y.value = 5.0
        if self.count == 4:
            raise ZeroDivisionError("boom in cycle 4")
"""


def test_exception_in_program_faults_with_safe_outputs_same_cycle(make_app: MakeApp) -> None:
    engine, _ = _engine(make_app, memory_manifest(), RAISING_LOGIC)
    driver = engine.app.drivers["mem"]
    assert isinstance(driver, MemoryDriver)
    seen: list[tuple[int, float, str]] = []
    engine.add_cycle_hook(
        lambda task, now: seen.append((task.ctx.cycle, driver.values["y"], engine.state.value))
    )
    engine.run_until(100_000_000)
    assert seen[2] == (3, 5.0, "RUN")
    assert seen[3] == (4, -1.0, "FAULT")
    assert all(v == -1.0 for _, v, _ in seen[3:])
    assert engine.app.programs["main"].count == 4  # type: ignore[attr-defined]
    assert "ZeroDivisionError" in engine.fault_reason
    assert engine.tasks[0].stats.faults == 1
    assert engine.tasks[0].stats.cycles == 10  # the scan itself kept going


def test_restart_after_fault_returns_to_run(make_app: MakeApp) -> None:
    engine, _ = _engine(make_app, memory_manifest(), RAISING_LOGIC)
    engine.run_until(50_000_000)
    assert engine.state is RuntimeState.FAULT
    engine.submit(lambda e: e.start())
    engine.run_until(100_000_000)
    assert engine.state is RuntimeState.RUN
    assert engine.app.programs["main"].count == 9  # type: ignore[attr-defined]


def test_stop_applies_safe_values_and_commands_run_between_cycles(make_app: MakeApp) -> None:
    engine, _ = _engine(make_app, memory_manifest(), RAISING_LOGIC.replace("== 4", "== -1"))
    driver = engine.app.drivers["mem"]
    assert isinstance(driver, MemoryDriver)
    engine.run_until(30_000_000)
    assert driver.values["y"] == 5.0
    fut = engine.submit(lambda e: (e.stop(), e.state.value)[1])
    engine.run_until(60_000_000)
    assert fut.result(timeout=0) == "STOP"
    assert driver.values["y"] == -1.0
    assert engine.app.programs["main"].count == 3  # type: ignore[attr-defined]


def test_forced_input_overrides_driver_and_forced_output_is_lifted_on_stop(
    make_app: MakeApp,
) -> None:
    engine, _ = _engine(make_app, memory_manifest(), COPY_LOGIC)
    driver = engine.app.drivers["mem"]
    assert isinstance(driver, MemoryDriver)
    driver.values["x"] = 1.5
    engine.image["X"].force(10.0)
    engine.run_until(20_000_000)
    assert driver.values["y"] == 20.0
    engine.image["Y"].force(99.0)
    engine.run_until(40_000_000)
    assert driver.values["y"] == 99.0
    engine.submit(lambda e: e.stop())
    engine.run_until(60_000_000)
    assert driver.values["y"] == -1.0 and not engine.image["Y"].forced

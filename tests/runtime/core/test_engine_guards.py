"""The scan survives what runs inside it: failing cycle hooks, sys.exit() in logic; commands
wake a sleeping scan whatever the task periods."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from runtime import RealClock, RuntimeState, ScanEngine, VirtualClock, load_app
from runtime.core._engine import StopScan
from runtime.mqtt._tap import TelemetryTap
from tests.conftest import COPY_LOGIC, MakeApp, memory_manifest


def _engine(make_app: MakeApp, logic: str = COPY_LOGIC, **manifest: Any) -> ScanEngine:
    engine = ScanEngine(
        load_app(make_app(memory_manifest(**manifest), logic)), clock=VirtualClock()
    )
    engine.start()
    return engine


def test_a_command_wakes_a_scan_sleeping_for_a_5_s_period(make_app: MakeApp) -> None:
    slow = [{"name": "slow", "period_ms": 5000, "programs": ["main"]}]
    app = load_app(make_app(memory_manifest(tasks=slow)))
    engine = ScanEngine(app, clock=RealClock())
    engine.start()
    engine.start_thread()
    try:
        # The first cycle runs at once (however late a loaded machine starts the thread);
        # the scan then sleeps until the next release, 5 s after the first.
        deadline = time.monotonic() + 4.0
        while app.programs["main"].count == 0 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        assert app.programs["main"].count == 1  # type: ignore[attr-defined]
        answers = []
        for _ in range(3):
            t0 = time.monotonic()
            thread = engine.submit(lambda e: threading.current_thread().name).result(timeout=5)
            answers.append(time.monotonic() - t0)
            assert thread == "scan-testapp"  # it ran on the scan thread, between cycles
        # Before the wake-up a command waited for the next release: up to 5 s here.
        assert max(answers) < 1.0, answers
        assert app.programs["main"].count == 1  # type: ignore[attr-defined]  # no extra cycle
    finally:
        engine.request_stop()
        engine.submit(lambda e: None)  # wakes it to see the stop request
        engine.join(timeout=5)
    assert not engine.running


def test_a_failing_hook_is_logged_once_counted_and_the_scan_goes_on(make_app: MakeApp) -> None:
    engine = _engine(make_app)
    seen: list[int] = []

    def broken(task: Any, now_ns: int) -> None:
        raise OSError(28, "No space left on device")

    engine.add_cycle_hook(broken)
    engine.add_cycle_hook(lambda task, now: seen.append(now))
    with capture_logs() as logs:
        engine.run_until(100_000_000)
    failures = [e for e in logs if e["event"] == "cycle_hook_failed"]
    assert len(failures) == 1 and "No space left" in failures[0]["error"]
    assert "Traceback" in failures[0]["traceback"] and failures[0]["hook"].endswith("broken")
    assert len(seen) == 10 and engine.tasks[0].stats.cycles == 10  # later hooks still ran
    errors = engine.statistics()["hook_errors"]
    assert list(errors.values()) == [10] and engine.state is RuntimeState.RUN


def test_stop_scan_from_a_hook_ends_the_run_on_purpose(make_app: MakeApp) -> None:
    engine = _engine(make_app)

    def stop(task: Any, now_ns: int) -> None:
        if now_ns >= 30_000_000:
            raise StopScan("enough")

    engine.add_cycle_hook(stop)
    with pytest.raises(StopScan):
        engine.run_until(100_000_000)
    assert engine.now_ns == 30_000_000 and engine.hook_errors == {}


EXIT_LOGIC = COPY_LOGIC.replace(
    "        self.count += 1\n",
    "        self.count += 1\n        if self.count == 3:\n            RAISE\n",
)


@pytest.mark.parametrize("statement", ["import sys; sys.exit(4)", "raise SystemExit"])
def test_sys_exit_in_logic_faults_and_the_scan_keeps_going(
    make_app: MakeApp, statement: str
) -> None:
    engine = _engine(make_app, EXIT_LOGIC.replace("RAISE", statement))
    engine.run_until(100_000_000)
    assert engine.state is RuntimeState.FAULT and "SystemExit" in engine.fault_reason
    assert engine.tasks[0].stats.cycles == 10 and engine.tasks[0].stats.faults == 1


def test_keyboard_interrupt_from_logic_on_the_scan_thread_is_a_fault(make_app: MakeApp) -> None:
    app = load_app(
        make_app(memory_manifest(), EXIT_LOGIC.replace("RAISE", "raise KeyboardInterrupt"))
    )
    engine = ScanEngine(app, clock=RealClock())
    engine.start()
    engine.start_thread()
    try:
        deadline = time.monotonic() + 5
        while engine.state is RuntimeState.RUN and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.state is RuntimeState.FAULT and "KeyboardInterrupt" in engine.fault_reason
        assert engine.running  # the scan thread did not die
    finally:
        engine.request_stop()
        engine.join(timeout=5)


def test_keyboard_interrupt_on_the_main_thread_stops_a_virtual_run(make_app: MakeApp) -> None:
    engine = _engine(make_app, EXIT_LOGIC.replace("RAISE", "raise KeyboardInterrupt"))
    with pytest.raises(KeyboardInterrupt):
        engine.run_until(100_000_000)  # a virtual run scans on the main thread: Ctrl-C


class _Broken:
    name = "X"
    type = None
    quality = 2
    forced = False

    @property
    def value(self) -> float:
        raise ZeroDivisionError("probe table")


def test_telemetry_tap_logs_its_first_error_and_counts_all() -> None:
    tap = TelemetryTap([], [], lambda: ("RUN", ""), deadbands={}, sample_ns=0, capacity=10)
    tap.points = [_Broken()]
    tap.numeric, tap.deadbands = [True], [0.0]
    tap.last_value, tap.last_quality, tap.last_forced = [0.0], [None], [False]
    with capture_logs() as logs:
        for _ in range(3):
            tap.sample(0)
    failures = [e for e in logs if e["event"] == "telemetry_sample_failed"]
    assert len(failures) == 1 and "probe table" in failures[0]["error"]
    stats = tap.statistics()
    assert stats["errors"] == 3 and "ZeroDivisionError" in stats["last_error"]

"""The engine's extension API: cycle hooks with handles, a list of program guards, pause/resume."""

from __future__ import annotations

import threading
import time
from typing import Any

from runtime import RealClock, RuntimeState, ScanEngine, Task, VirtualClock, load_app
from runtime.core import Handled
from tests.conftest import COPY_LOGIC, MakeApp, memory_manifest

RAISE_AT_3 = COPY_LOGIC.replace(
    "        self.count += 1\n",
    "        self.count += 1\n        if self.count == 3:\n            raise ValueError('three')\n",
)


def _engine(make_app: MakeApp, logic: str = COPY_LOGIC, clock: Any = None) -> ScanEngine:
    app = load_app(make_app(memory_manifest(), logic))
    engine = ScanEngine(app, clock=clock or VirtualClock())
    engine.start()
    return engine


def _count(engine: ScanEngine) -> int:
    return int(engine.app.programs["main"].count)  # type: ignore[attr-defined]


def test_hooks_run_in_order_and_a_handle_removes_exactly_its_attachment(
    make_app: MakeApp,
) -> None:
    engine = _engine(make_app)
    seen: list[str] = []

    def a(task: Task, now: int) -> None:
        seen.append("a")

    def b(task: Task, now: int) -> None:
        seen.append("b")

    first_a = engine.add_cycle_hook(a)
    engine.add_cycle_hook(b)
    engine.add_cycle_hook(a)  # the same hook twice: two attachments
    engine.run_until(10_000_000)
    assert seen == ["a", "b", "a"]
    first_a.remove()
    first_a.remove()  # idempotent
    assert not first_a.active
    seen.clear()
    engine.run_until(20_000_000)
    assert seen == ["b", "a"]
    assert isinstance(engine.fastest.hooks, tuple)  # the scan iterates a snapshot, no lock


def test_a_hook_removed_from_another_thread_stops_being_called(make_app: MakeApp) -> None:
    engine = _engine(make_app, clock=RealClock())
    calls = [0]
    scan_threads: set[str] = set()

    def hook(task: Task, now: int) -> None:
        calls[0] += 1
        scan_threads.add(threading.current_thread().name)

    handle = engine.add_cycle_hook(hook)  # attached before the thread: no race
    engine.start_thread()
    try:
        deadline = time.monotonic() + 5
        while calls[0] < 5 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert calls[0] >= 5
        handle.remove()  # from this (the main) thread while the scan runs
        after_remove = calls[0]
        cycles = engine.fastest.stats.cycles
        while engine.fastest.stats.cycles < cycles + 5 and time.monotonic() < deadline + 5:
            time.sleep(0.005)
        assert engine.fastest.stats.cycles >= cycles + 5
        # a cycle already iterating the old tuple may call it once more; never afterwards
        assert calls[0] - after_remove <= 1
        assert scan_threads == {"scan-testapp"}
    finally:
        engine.request_stop()
        engine.submit(lambda e: None)
        engine.join(timeout=5)


def test_guards_are_consulted_newest_first_until_one_handles(make_app: MakeApp) -> None:
    engine = _engine(make_app, RAISE_AT_3)
    asked: list[str] = []

    def passing(task: Task, program: str, exc: Exception) -> bool:
        asked.append("old")
        return False

    def handling(task: Task, program: str, exc: Exception) -> bool:
        asked.append(f"new:{program}:{exc}")
        return True

    engine.add_program_guard(passing)
    engine.add_program_guard(handling)
    engine.run_until(50_000_000)
    assert asked == ["new:main:three"]  # the older guard was not needed
    assert engine.state is RuntimeState.RUN and _count(engine) == 5


def test_with_every_guard_passing_or_removed_the_exception_faults(make_app: MakeApp) -> None:
    engine = _engine(make_app, RAISE_AT_3)
    asked: list[str] = []
    engine.add_program_guard(lambda t, p, e: asked.append("a") or False)
    removed = engine.add_program_guard(lambda t, p, e: True)
    removed.remove()
    assert len(engine.program_guards) == 1
    engine.run_until(50_000_000)
    assert asked == ["a"]
    assert engine.state is RuntimeState.FAULT and "ValueError: three" in engine.fault_reason


def test_rerun_runs_the_replaced_programs_in_the_same_cycle_once(make_app: MakeApp) -> None:
    engine = _engine(make_app, RAISE_AT_3)
    task = engine.fastest
    original = list(task.programs)
    cycles_of_rerun: list[int] = []

    class Replacement:
        def execute(self, ctx: Any) -> None:
            cycles_of_rerun.append(ctx.cycle)
            raise RuntimeError("the replacement raises too")

    def guard(t: Task, program: str, exc: Exception) -> Handled:
        t.set_programs([("other", Replacement())])  # type: ignore[list-item]
        return Handled.RERUN

    engine.add_program_guard(guard)
    engine.run_until(30_000_000)  # cycles 1..3; the program raises in cycle 3
    # The replacement ran once in cycle 3 (a second RERUN request is not looped on).
    assert cycles_of_rerun == [3]
    assert engine.state is RuntimeState.RUN
    task.set_programs(original)


def test_pause_and_resume_programs(make_app: MakeApp) -> None:
    engine = _engine(make_app)
    engine.run_until(30_000_000)
    assert _count(engine) == 3
    engine.pause_programs()
    assert engine.programs_paused
    # an online change rebinding the programs of a paused task keeps it paused
    engine.fastest.set_programs(list(engine.fastest.programs))
    engine.run_until(60_000_000)
    assert _count(engine) == 3 and engine.fastest.stats.cycles == 6  # I/O scanned, no logic
    engine.resume_programs()
    assert not engine.programs_paused
    engine.run_until(90_000_000)
    assert _count(engine) == 6


def test_close_hooks_and_statistics_sections(make_app: MakeApp) -> None:
    engine = _engine(make_app)
    closed: list[RuntimeState] = []
    engine.add_close_hook(lambda e: closed.append(e.state))
    engine.add_statistics("extra", lambda: {"n": 1})
    engine.run_until(10_000_000)
    assert engine.statistics()["extra"] == {"n": 1}
    engine.close()
    assert closed == [RuntimeState.RUN]  # before outputs go safe and the state becomes STOP


def test_a_real_time_run_to_an_end_lasts_its_app_time_and_serves_commands(
    make_app: MakeApp,
) -> None:
    """``start_thread(end_ns)``: cycles released before the end only (never the one at it,
    whoever wins the race for the CPU); the thread lives until the end, serving commands."""
    manifest = memory_manifest()
    manifest["tasks"][0]["period_ms"] = 500
    engine = ScanEngine(load_app(make_app(manifest, COPY_LOGIC)), clock=RealClock())
    engine.start()
    period = engine.fastest.period_ns
    engine.start_thread(2 * period)  # releases at 0 and 500 ms; the one at 1 s is the end
    try:
        deadline = time.monotonic() + 5
        while engine.fastest.stats.cycles < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        # After the last cycle, before the end: still running, and a command is served.
        served = engine.submit(lambda e: (e.fastest.stats.cycles, e.clock.now_ns()))
        cycles, at = served.result(timeout=2)
        engine.join(timeout=5)
        ended = engine.clock.now_ns()
    finally:
        engine.request_stop()
        engine.submit(lambda e: None)
        engine.join(timeout=5)
    assert cycles == 2 and at < engine.epoch_ns + 2 * period
    assert not engine.running and ended >= engine.epoch_ns + 2 * period
    assert engine.fastest.stats.cycles == 2 and engine.now_ns == period

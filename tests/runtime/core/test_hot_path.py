"""The scan's hot path allocates nothing that survives a cycle and leaves the collector idle."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import RealClock, ScanEngine, VirtualClock, load_app
from runtime.core._rt import GcControl

APP = Path(__file__).resolve().parents[3] / "plc_apps" / "bioreactor"
WARMUP_S = 600  # past FILL into HEAT: every branch of the programs has run once
CYCLES = 2000


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Counts are only meaningful while the collector does not run during the measurement."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _warm_engine() -> ScanEngine:
    engine = ScanEngine(load_app(APP), clock=VirtualClock())
    engine.start()
    engine.run_until(WARMUP_S * 10**9)
    return engine


def _run_cycles(engine: ScanEngine, cycles: int) -> None:
    task = engine.fastest
    end = engine.now_ns + cycles * task.period_ns
    engine.run_until(end)


def test_cycles_do_not_grow_the_heap(no_gc: None) -> None:
    engine = _warm_engine()
    _run_cycles(engine, 100)  # settle caches (method lookups, int/float free lists)
    before = sys.getallocatedblocks()
    cycles0 = sum(t.stats.cycles for t in engine.tasks)
    _run_cycles(engine, CYCLES)
    grown = sys.getallocatedblocks() - before
    cycles = sum(t.stats.cycles for t in engine.tasks) - cycles0
    engine.close()
    assert cycles >= CYCLES
    # A few blocks move between free lists and ints that grow past a size class; a leak of
    # one object per cycle would show as thousands.
    assert grown < 200, f"{grown} blocks allocated and kept over {cycles} cycles"


def test_cycles_leave_no_garbage_for_the_collector(no_gc: None) -> None:
    engine = _warm_engine()
    _run_cycles(engine, 100)
    g0 = gc.get_count()[0]
    _run_cycles(engine, CYCLES)
    grown = gc.get_count()[0] - g0
    engine.close()
    # gen-0 count = container objects allocated minus freed: what the collector would have
    # to look at. Less than one per hundred cycles means it never triggers during a run.
    assert grown < CYCLES // 100, f"gen-0 count grew by {grown} over {CYCLES} cycles"


def test_no_collection_during_a_frozen_real_time_run() -> None:
    app = load_app(APP)
    engine = ScanEngine(app, clock=RealClock())
    task = engine.fastest
    task.period_ns = 2_000_000  # 2 ms: 500 cycles a second
    engine.start()
    engine.start_thread()  # freezes and disables the collector (manifest: gc_freeze true)
    try:
        deadline = time.monotonic() + 10.0
        while task.stats.cycles < 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = engine.statistics()
    finally:
        engine.request_stop()
        engine.join(5)
        engine.close()
    assert task.stats.cycles >= 1000
    assert stats["gc_collections"] == [0, 0, 0]
    assert stats["gc_process_collections"][1:] == [0, 0]


def test_gc_control_counts_and_bounds_collections() -> None:
    ctl = GcControl(enabled=True, threshold=10)
    ctl.freeze()
    try:
        junk = [[i] for i in range(50)]  # 50 tracked containers: past the threshold
        ctl.maybe_collect(10**9)  # plenty of slack: collects the young generation
        assert ctl.collections[0] + ctl.collections[1] == 1
        assert sum(ctl.process_collections()) >= 1
        more = [[i] for i in range(50)]
        ctl.maybe_collect(0)  # no slack and below 10 thresholds: waits
        assert sum(ctl.collections) == 1
        del junk, more
    finally:
        ctl.release()


def test_realtime_settings_can_be_overridden_without_editing_the_manifest() -> None:
    engine = ScanEngine(load_app(APP), clock=VirtualClock())
    engine.set_realtime(fifo_priority=80, cpus=[1], spin_us=200)
    assert (engine.realtime.fifo_priority, engine.realtime.cpus) == (80, [1])
    assert {t.spin_ns for t in engine.tasks} == {200_000}
    assert engine.app.manifest.realtime.fifo_priority == 0  # the app itself is unchanged
    with pytest.raises(ValueError):
        engine.set_realtime(fifo_priority=120)

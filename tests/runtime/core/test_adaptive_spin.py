"""Adaptive spin on the virtual clock: the margin follows the sleep lateness, within bounds."""

from __future__ import annotations

import contextlib
import os
import random
import resource
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import structlog

from runtime import RealClock, ScanEngine, VirtualClock, load_app
from runtime.core import _rt
from runtime.core._spin import (
    _HOLD,
    GUARD_NS,
    WARMUP,
    WINDOW,
    AdaptiveSpin,
    SpinMode,
    sleep_to,
)
from runtime.core.manifest import RealtimeConfig
from tests.conftest import MakeApp, memory_manifest

PERIOD = 1_000_000


class Lateness:
    """The OS of the virtual clock: each sleep ends ``draw()`` ns after its target."""

    def __init__(self, lo_us: int, hi_us: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.set(lo_us, hi_us)

    def set(self, lo_us: int, hi_us: int) -> None:
        self.draw: Callable[[], int] = lambda: self.rng.randint(lo_us * 1000, hi_us * 1000)

    def __call__(self) -> int:
        return self.draw()


def run(clock: VirtualClock, spin: AdaptiveSpin, cycles: int) -> list[int]:
    """Sleep to ``cycles`` releases 1 ms apart; how late each wake-up was (0 = on time)."""
    errors = []
    for _ in range(cycles):
        deadline = (clock.now_ns() // PERIOD + 1) * PERIOD
        spin.learn(sleep_to(clock, spin, deadline, None))
        errors.append(clock.now_ns() - deadline)
    return errors


def test_the_margin_follows_a_changing_lateness_distribution() -> None:
    os_ = Lateness(20, 40)
    clock, spin = VirtualClock(oversleep=os_), AdaptiveSpin(300_000)
    run(clock, spin, WINDOW)
    assert 40_000 <= spin.margin_ns <= 42_000  # p99 of U(20, 40) µs, bucket edge above
    os_.set(80, 120)  # the machine gets loaded
    errors = run(clock, spin, WINDOW)
    assert 119_000 <= spin.margin_ns <= 128_000
    # once learnt, the spin covers all but the top 1 %: the wake-up is on time
    steady = errors[WINDOW // 2 :]
    assert sum(e > 0 for e in steady) <= len(steady) // 100
    assert spin.as_dict()["sleep_lateness_p99_us"] == pytest.approx(120, abs=8)


def test_a_burst_raises_the_margin_at_once_and_it_comes_down_after() -> None:
    os_ = Lateness(10, 30)
    clock, spin = VirtualClock(oversleep=os_), AdaptiveSpin(500_000)
    run(clock, spin, WINDOW)
    quiet = spin.margin_ns
    assert quiet <= 31_000
    os_.set(200, 250)
    errors = run(clock, spin, 100)
    assert spin.margin_ns >= 200_000  # overshoots raise the margin at once, not after the window
    assert sum(e > 0 for e in errors) <= 10 and errors[-30:] == [0] * 30
    os_.set(10, 30)
    run(clock, spin, WINDOW // 2)
    assert spin.margin_ns >= 200_000  # the burst is still within the window
    run(clock, spin, WINDOW)
    assert spin.margin_ns == quiet  # the window forgot the burst: spinning is cheap again


class Tail:
    """A tight body of U(10, 20) µs and a tail: every 200th sleep ends ``tail_us`` late."""

    def __init__(self, tail_us: int) -> None:
        self.rng, self.n, self.tail_ns = random.Random(5), 0, tail_us * 1000

    def __call__(self) -> int:
        self.n += 1
        return self.tail_ns if self.n % 200 == 0 else self.rng.randint(10_000, 20_000)


@pytest.mark.parametrize(
    ("tail_us", "budget_us", "base_us"),
    [
        (30, 40, (30, 32)),  # the tail fits in the budget: covered, p99.9
        (60, 40, (40, 40)),  # it does not: the base rises to the budget, no further
        (60, 0, (20, 21)),  # no budget: the body's p99, as before
        (60, 10, (20, 21)),  # a budget under the p99 never lowers the base
    ],
)
def test_the_base_rises_towards_the_tail_within_the_cpu_budget(
    tail_us: int, budget_us: int, base_us: tuple[int, int]
) -> None:
    spin = AdaptiveSpin(300_000, SpinMode.ADAPTIVE, budget_us * 1000)
    clock = VirtualClock(oversleep=Tail(tail_us))
    errors = run(clock, spin, 2 * WINDOW)
    lo, hi = base_us
    assert lo <= spin.as_dict()["base_us"] <= hi
    late = sum(e > 0 for e in errors[WINDOW:])
    if tail_us <= budget_us:  # the 0.5 % tail is covered: every wake-up on time
        assert late == 0
    else:  # the tail overshoots: each stall is late (the burst hold may catch a few)
        assert late > 0


def test_one_pass_percentiles_equal_the_single_ones() -> None:
    rng = random.Random(11)
    spin = AdaptiveSpin(300_000)
    for _ in range(3):
        for _ in range(WINDOW):
            spin.record(int(rng.paretovariate(1.5) * 10_000))
        for low, high in ((0.99, 0.999), (0.5, 0.9), (0.9, 0.99)):
            assert spin._percentiles_ns(low, high) == (
                spin.percentile_ns(low),
                spin.percentile_ns(high),
            )


def test_a_task_budgets_three_percent_of_its_period_for_the_tail(make_app: MakeApp) -> None:
    engine = ScanEngine(load_app(make_app()), clock=VirtualClock())
    task = engine.tasks[0]
    assert task.spin.as_dict()["tail_budget_us"] == task.period_ns * 0.03 / 1000


class Stalls:
    """A VM's lateness: a body of U(20, 40) µs and 250 µs stalls at the given sleeps."""

    def __init__(self, at: set[int]) -> None:
        self.rng, self.at, self.n = random.Random(3), at, 0

    def __call__(self) -> int:
        self.n += 1
        return 250_000 if self.n in self.at else self.rng.randint(20_000, 40_000)


def test_rare_stalls_do_not_set_the_margin_of_every_cycle() -> None:
    """0.3 % isolated stalls: a p99.9 margin would spin ~225 µs a cycle; this one a fifth."""
    n = 4 * WINDOW
    stalls = set(range(WARMUP + 100, n - 300, 333))  # isolated: one every 333 sleeps
    clock, spin = VirtualClock(oversleep=Stalls(stalls)), AdaptiveSpin(300_000)
    run(clock, spin, WARMUP)
    spin.spun_ns = spin.sleeps = 0  # the warm-up spins the bound on purpose
    errors = run(clock, spin, n - WARMUP)
    assert 40_000 <= spin.as_dict()["base_us"] * 1000 <= 42_000  # p99: the body, not the stalls
    assert spin.as_dict()["sleep_lateness_p99_9_us"] >= 250  # the stalls are seen...
    assert spin.as_dict()["mean_spin_us"] < 45  # ...but not paid for on every cycle
    assert sum(e > 0 for e in errors) == len(stalls)  # each isolated stall still wakes late
    assert 40_000 <= spin.margin_ns <= 42_000  # the hold after the last stall has decayed


def test_a_cluster_of_stalls_is_covered_after_its_first() -> None:
    start = WINDOW + WARMUP  # a full window: 20 stalls are 0.5 % of it, under the base's p99
    cluster = set(range(start, start + 40, 2))  # 20 stalls within 40 sleeps, as on a busy host
    clock, spin = VirtualClock(oversleep=Stalls(cluster)), AdaptiveSpin(300_000)
    errors = run(clock, spin, start + 40 + _HOLD + 200)
    late = [i + 1 for i, e in enumerate(errors) if e > 0]  # sleeps are counted from 1
    assert late == [start]  # the first stall raised the hold; the other 19 were on time
    assert spin.margin_ns <= 42_000  # after the cluster: back to the body's p99, not 4 s later


def test_the_hold_follows_the_overshoot_and_is_bounded() -> None:
    clock, spin = VirtualClock(oversleep=Stalls({WARMUP + 50})), AdaptiveSpin(300_000)
    run(clock, spin, WARMUP + 50)
    assert spin.margin_ns == 250_000 + GUARD_NS  # the stall plus the guard, from the next sleep
    run(clock, spin, _HOLD)
    assert spin.margin_ns == 250_000 + GUARD_NS  # held while the burst may go on
    run(clock, spin, 20)
    assert 42_000 < spin.margin_ns < 250_000  # then decaying
    capped = AdaptiveSpin(150_000)
    run(VirtualClock(oversleep=Stalls({WARMUP + 50})), capped, WARMUP + 51)
    assert capped.margin_ns == 150_000 and capped.as_dict()["burst_hold_us"] == 255


def test_a_stall_the_bound_cannot_cover_is_not_spun_for() -> None:
    """250 µs stalls against a 100 µs bound: spinning it would leave them 150 µs late anyway."""
    stalls = set(range(WINDOW + 50, WINDOW + 90, 2))  # 0.5 % of the window: under the base
    clock, spin = VirtualClock(oversleep=Stalls(stalls)), AdaptiveSpin(100_000)
    errors = run(clock, spin, WINDOW + 100)
    assert spin.as_dict()["burst_hold_us"] == 0 and spin.margin_ns <= 42_000
    assert sum(e > 0 for e in errors) == len(stalls)


def test_the_margin_never_exceeds_spin_us_nor_goes_below_zero() -> None:
    clock, spin = VirtualClock(oversleep=Lateness(900, 1000)), AdaptiveSpin(200_000)
    errors = run(clock, spin, WARMUP * 4)
    assert spin.margin_ns == 200_000
    assert min(errors) >= 700_000  # the bound wins: those wake-ups stay late
    zero = AdaptiveSpin(0)
    clock = VirtualClock(oversleep=Lateness(0, 50))
    errors = run(clock, zero, WARMUP * 4)
    assert zero.margin_ns == 0 and max(errors) > 0
    early = AdaptiveSpin(100_000)
    run(VirtualClock(oversleep=lambda: -5_000), early, WARMUP * 4)  # an early wake: no negative
    assert 0 <= early.margin_ns <= 1_000


def test_warm_up_fixed_and_off_modes() -> None:
    os_ = Lateness(5, 10)
    spin = AdaptiveSpin(150_000)
    run(VirtualClock(oversleep=os_), spin, WARMUP - 1)
    assert spin.margin_ns == 150_000  # too few samples yet: the whole bound
    fixed = AdaptiveSpin(150_000, SpinMode.FIXED)
    run(VirtualClock(oversleep=os_), fixed, WARMUP * 4)
    assert fixed.margin_ns == 150_000 and fixed.as_dict()["samples"] == WARMUP * 4
    off = AdaptiveSpin(150_000, SpinMode.OFF)
    errors = run(VirtualClock(oversleep=os_), off, 100)
    assert off.margin_ns == 0 and min(errors) >= 5_000
    fixed.configure(150_000, SpinMode.ADAPTIVE)  # what fixed mode saw is already learnt
    assert fixed.margin_ns <= 11_000
    off.configure(150_000, SpinMode.ADAPTIVE)  # every off sleep "overshot" 0: no stale hold
    assert off.as_dict()["burst_hold_us"] == 0 and off.margin_ns == 150_000  # still warming up


def test_a_woken_sleep_teaches_nothing() -> None:
    clock, spin = VirtualClock(oversleep=lambda: 0), AdaptiveSpin(100_000)
    clock.charge(2 * PERIOD)
    late = sleep_to(clock, spin, PERIOD, None)  # already past: no sleep happened
    assert late == -1
    spin.learn(late)
    assert spin.as_dict()["samples"] == 0
    spin.learn(0)
    assert spin.as_dict()["samples"] == 1


def test_engine_modes_from_the_operators_flags(make_app: MakeApp) -> None:
    app = load_app(make_app())
    engine = ScanEngine(app, clock=VirtualClock())
    (task,) = engine.tasks
    assert (
        task.spin.mode is SpinMode.ADAPTIVE and task.spin_ns == 300_000
    )  # 10 ms task: the default
    engine.set_realtime(spin_us=200)  # --spin-us alone: the old fixed spin
    assert (task.spin.mode, task.spin.margin_ns) == (SpinMode.FIXED, 200_000)
    engine.set_realtime(spin_mode=SpinMode.ADAPTIVE)
    assert (task.spin.mode, task.spin.cap_ns) == (SpinMode.ADAPTIVE, 200_000)
    engine.set_realtime(spin_mode=SpinMode.OFF)
    assert task.spin.margin_ns == 0
    stats = task.spin.as_dict()
    assert stats["mode"] == "off" and stats["bound_us"] == 200
    assert "spin" not in engine.statistics()["tasks"]["fast"]  # virtual time: nothing learnt


def test_the_default_bound_is_a_quarter_period_at_most(make_app: MakeApp) -> None:
    manifest = memory_manifest()
    manifest["tasks"][0]["period_ms"] = 0.5
    engine = ScanEngine(load_app(make_app(manifest)), clock=VirtualClock())
    assert engine.tasks[0].spin_ns == 125_000


def test_virtual_time_is_untouched_by_the_spin(make_app: MakeApp) -> None:
    """The virtual fast path never sleeps short: release times are exactly the schedule."""
    engine = ScanEngine(load_app(make_app()), clock=VirtualClock())
    seen: list[int] = []
    engine.add_cycle_hook(lambda task, now: seen.append(now))
    engine.start()
    engine.run_until(100_000_000)
    engine.close()
    assert seen == [i * 10_000_000 for i in range(10)]


def test_automatic_settings_fill_only_what_nobody_set() -> None:
    plan = _rt.plan_realtime(RealtimeConfig(), auto=True)
    assert plan.fifo_priority == _rt.AUTO_FIFO_PRIORITY and plan.lock_memory
    assert plan.cpu_latency_us == 0
    assert plan.auto == {"sched", "affinity", "memory_lock", "cpu_latency"}
    explicit = RealtimeConfig.model_validate(
        {"fifo_priority": 0, "cpus": [], "lock_memory": False, "cpu_dma_latency_us": None}
    )
    plan = _rt.plan_realtime(explicit, auto=True)
    assert (plan.fifo_priority, plan.cpus, plan.lock_memory, plan.cpu_latency_us, plan.auto) == (
        0,
        [],
        False,
        None,
        frozenset(),
    )
    plan = _rt.plan_realtime(RealtimeConfig(), auto=False)
    assert (plan.fifo_priority, plan.cpus, plan.lock_memory, plan.cpu_latency_us) == (
        0,
        [],
        False,
        None,
    )
    plan = _rt.plan_realtime(RealtimeConfig(cpu_dma_latency_us=20), auto=False)
    assert plan.cpu_latency_us == 20 and plan.auto == frozenset()


def test_a_cpu_latency_limit_is_written_held_and_released(tmp_path: Path) -> None:
    """The request is the 32-bit µs value written to the device, in force while it is open."""
    device = tmp_path / "cpu_dma_latency"
    device.write_bytes(b"")
    hold, text = _rt.CpuLatencyHold.take(7, str(device))
    assert hold is not None and text == "7 us (held)"
    assert struct.unpack("i", device.read_bytes()) == (7,)
    assert str(device) in _open_files()
    hold.release()
    hold.release()  # twice is harmless (the scan thread's end and a close may both do it)
    assert str(device) not in _open_files()


def test_a_cpu_latency_limit_the_os_refuses_is_reported_not_raised(tmp_path: Path) -> None:
    hold, text = _rt.CpuLatencyHold.take(0, str(tmp_path / "absent"))
    assert hold is None
    assert text.startswith("not held (cannot open ") and "absent" in text


def test_the_scan_thread_holds_the_automatic_cpu_latency_limit_while_it_runs(
    make_app: MakeApp,
) -> None:
    """``vplc run``'s automatic settings: the limit is in the realtime report, and the
    device is open exactly while the scan thread runs (or the refusal says why not)."""
    engine = ScanEngine(load_app(make_app()), clock=RealClock())
    engine.set_realtime(auto=True, fifo_priority=0, cpus=[])
    engine.start()
    engine.start_thread()
    deadline = time.monotonic() + 5
    while "cpu_latency" not in engine.realtime_report and time.monotonic() < deadline:
        time.sleep(0.01)
    text = engine.realtime_report["cpu_latency"]
    opened = _open_files()
    engine.request_stop()
    engine.join(5)
    engine.close()
    if text == "0 us (held)":
        assert _rt.CPU_DMA_LATENCY in opened
        assert _rt.CPU_DMA_LATENCY not in _open_files()
    else:  # no such device or no permission here: said, and nothing held
        assert text.startswith("not held (cannot ")
        assert _rt.CPU_DMA_LATENCY not in opened


def _open_files() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def test_memory_lock_is_refused_where_it_would_break_allocations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_rt, "_has_capability", lambda bit: False)
    monkeypatch.setattr(resource, "getrlimit", lambda what: (65536, 65536))
    text, ok = _rt._lock_memory()
    assert not ok and "RLIMIT_MEMLOCK is 65536 bytes" in text


def test_one_log_line_says_what_was_applied_and_refused(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)  # as in an unprivileged container
    manifest = memory_manifest(
        realtime={"lock_memory": False, "cpus": [], "cpu_dma_latency_us": None}
    )
    engine = ScanEngine(load_app(make_app(manifest)), clock=RealClock())
    engine.set_realtime(auto=True)
    with structlog.testing.capture_logs() as logs:
        engine.start()
        engine.start_thread()
        deadline = time.monotonic() + 5
        while engine.tasks[0].stats.cycles < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        engine.request_stop()
        engine.join(5)
    engine.close()
    lines = [e for e in logs if e["event"] == "realtime"]
    assert len(lines) == 1 and lines[0]["log_level"] == "info"  # refused automatic: not a warning
    assert "Operation not permitted" in lines[0]["refused"]["sched"]
    assert lines[0]["automatic"] == ["sched"] and lines[0]["applied"]["timer_slack"] == "1 ns"
    assert lines[0]["spin"] == {"fast": "adaptive 300 us"}
    assert engine.tasks[0].stats.cycles >= 3  # a refused knob never stops the scan
    assert engine.statistics()["tasks"]["fast"]["spin"]["mode"] == "adaptive"


def test_a_refused_knob_that_was_asked_for_is_a_warning(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    engine = ScanEngine(load_app(make_app()), clock=RealClock())
    engine.set_realtime(cpus=[0], auto=False)
    with structlog.testing.capture_logs() as logs:
        engine.start()
        engine.start_thread()
        time.sleep(0.05)
        engine.request_stop()
        engine.join(5)
    engine.close()
    (line,) = [e for e in logs if e["event"] == "realtime"]
    assert line["log_level"] == "warning" and "affinity" in line["refused"]

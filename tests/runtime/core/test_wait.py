"""The scan's wait: the compiled futex wait and the Python reference keep one contract."""

from __future__ import annotations

import threading
import time

import pytest

from runtime.core._clock import (
    PAST,
    WOKEN,
    RealClock,
    ScanWaker,
    Waker,
    make_waker,
    wait_implementation,
)

MS = 1_000_000


def _compiled() -> ScanWaker:
    waker = make_waker()
    if isinstance(waker, Waker):
        pytest.skip("runtime/core/_wait.pyx not built (no C compiler at install)")
    return waker


@pytest.fixture(params=["c", "python"])
def waker(request: pytest.FixtureRequest) -> ScanWaker:
    return _compiled() if request.param == "c" else Waker()


def test_the_installed_build_waits_in_c() -> None:
    """make install builds the extension: a scan that silently fell back would be slower."""
    assert wait_implementation(_compiled()) == "c futex"


def test_a_sleep_ends_at_its_target_and_spins_to_the_deadline(waker: ScanWaker) -> None:
    for spin_ns in (0, 200_000):
        deadline = time.monotonic_ns() + 5 * MS
        late = RealClock().sleep_until(deadline, spin_ns, waker)
        end = time.monotonic_ns()
        assert end >= deadline  # the spin, or the sleep itself, reached the deadline
        # it slept: the lateness after its target (deadline - spin), at most what passed
        assert 0 <= late <= end - (deadline - spin_ns)


def test_a_wake_cuts_the_sleep_short_and_skips_the_spin(waker: ScanWaker) -> None:
    deadline = time.monotonic_ns() + 2_000 * MS
    timer = threading.Timer(0.05, waker.wake)
    timer.start()
    t0 = time.monotonic()
    assert RealClock().sleep_until(deadline, 100_000, waker) == -1
    assert time.monotonic() - t0 < 1.0
    timer.join()


def test_a_wake_with_nobody_waiting_is_kept_for_the_next_wait(waker: ScanWaker) -> None:
    waker.wake()
    waker.wake()  # twice: still one pending wake-up
    t0 = time.monotonic()
    assert waker.wait(5.0) is True
    assert time.monotonic() - t0 < 1.0
    assert waker.wait(0.02) is False  # consumed: the next one times out
    waker.wake()
    assert waker.sleep(time.monotonic_ns() + 2_000 * MS) == WOKEN


def test_a_target_already_past_only_spins(waker: ScanWaker) -> None:
    deadline = time.monotonic_ns() + 2 * MS
    assert RealClock().sleep_until(deadline, 10 * MS, waker) == -1  # target past: no sleep
    assert time.monotonic_ns() >= deadline
    assert waker.sleep(time.monotonic_ns() - MS) == PAST
    waker.wake()
    assert waker.sleep(time.monotonic_ns() - MS) == PAST  # a wake-up is not consumed by it...
    assert waker.wait(0.0) is True  # ...but kept for the next wait


def test_a_sleep_reports_how_late_it_ended(waker: ScanWaker) -> None:
    target = time.monotonic_ns() + 3 * MS
    late = waker.sleep(target)
    end = time.monotonic_ns()
    assert 0 <= late <= end - target


def test_the_compiled_sleep_does_not_hold_the_gil() -> None:
    """Another Python thread runs while the scan sleeps (it would be frozen otherwise)."""
    waker = _compiled()
    counted = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counted[0] += 1

    thread = threading.Thread(target=count)
    thread.start()
    time.sleep(0.01)
    before = counted[0]
    waker.sleep(time.monotonic_ns() + 100 * MS)
    during = counted[0] - before
    stop.set()
    thread.join()
    assert during > 1000

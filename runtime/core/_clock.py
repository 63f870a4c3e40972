"""Clocks for the scan engine: the real monotonic clock and a virtual clock for tests/benches."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Waker:
    """Cuts a scan's sleep short when another thread has work for it (a submitted command).

    A binary semaphore on a raw lock: ``wait`` is one C call into the same futex wait with
    the same timer slack as ``time.sleep``, so a sleep that nobody interrupts wakes as
    precisely as before. A ``wake`` with nobody waiting makes the next ``wait`` return at
    once; the caller then re-checks its queue, so no wake-up is ever lost.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # already set: one pending wake-up is enough
            self._lock.release()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``; True if woken (the wake-up is consumed)."""
        return self._lock.acquire(timeout=timeout_s)

    def sleep(self, target_ns: int) -> int:
        """Sleep to ``target_ns`` unless woken: how late it ended (ns), ``WOKEN`` or ``PAST``.

        The reference of the compiled ``FutexWaker.sleep`` (runtime/core/_wait.pyx).
        """
        remaining = target_ns - time.monotonic_ns()
        if remaining <= 0:
            return PAST
        if self._lock.acquire(timeout=remaining / 1e9):
            return WOKEN
        return time.monotonic_ns() - target_ns


WOKEN = -1  # a waker's sleep was cut short: the caller re-checks what is due
PAST = -2  # the target had already passed: no sleep


class ScanWaker(Protocol):
    """What the scan sleeps on: ``Waker`` or the compiled ``FutexWaker``."""

    def wake(self) -> None: ...

    def wait(self, timeout_s: float) -> bool: ...

    def sleep(self, target_ns: int) -> int: ...


def wait_implementation(waker: ScanWaker) -> str:
    """How the scan waits, for the realtime report."""
    return "python lock" if isinstance(waker, Waker) else "c futex"


def make_waker() -> ScanWaker:
    """The compiled futex wait where it was built (setup.py), else the Python one."""
    try:
        from runtime.core._wait import FutexWaker
    except ImportError:
        return Waker()
    return FutexWaker()


class Clock(Protocol):
    """Time source plus the way to wait for a deadline; all values are integer nanoseconds."""

    virtual: bool

    def now_ns(self) -> int: ...

    def sleep_until(
        self, deadline_ns: int, spin_ns: int = 0, waker: ScanWaker | None = None
    ) -> int:
        """Wait for ``deadline_ns``: sleep to ``spin_ns`` before it, then busy-wait.

        Returns how late the sleep ended after (deadline − spin), in ns, or -1 when it did
        not sleep to its end (woken for a command, or the time had already passed): what
        the adaptive spin learns from (runtime/core/_spin.py).
        """
        ...


class RealClock:
    """CLOCK_MONOTONIC. Sleeps to ``spin_ns`` before the deadline, then busy-waits.

    The OS wakes a sleeping thread 50–150 µs late on a non-RT kernel (DESIGN.md §3); spinning
    the last stretch trades CPU for wake-up precision, per task, only where asked.
    """

    virtual = False

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until(
        self, deadline_ns: int, spin_ns: int = 0, waker: ScanWaker | None = None
    ) -> int:
        """Sleep to the deadline; return early (without spinning) when ``waker`` is woken.

        The spin is Python on purpose: measured against a C spin in the same extension, the
        interpreter it keeps warm runs the cycle after it ~0.5 µs sooner (wake p50 0.35 µs
        after the release instead of 0.85 µs), and the C sleep before it keeps its tighter
        lateness (p99 27 µs against Python's own timed lock wait's 45-54 µs).
        """
        target = deadline_ns - spin_ns
        if waker is not None:
            late = waker.sleep(target)
            if late == WOKEN:
                return -1
        else:
            remaining = target - time.monotonic_ns()
            late = PAST
            if remaining > 0:
                time.sleep(remaining / 1e9)
                late = time.monotonic_ns() - target
        if spin_ns:
            while time.monotonic_ns() < deadline_ns:
                pass
        return late if late >= 0 else -1


class VirtualClock:
    """Simulated time: sleeping jumps straight to the deadline, so runs go as fast as the CPU.

    ``charge(ns)`` lets a test pretend a program took time, which is how overruns are tested
    deterministically without depending on the machine's speed. ``oversleep`` models the OS:
    each sleep ends that many ns after its target (deadline − spin), then the spin brings
    the clock to the deadline if it is not past it yet; without it a sleep ends on time.
    """

    virtual = True

    def __init__(self, start_ns: int = 0, oversleep: Callable[[], int] | None = None) -> None:
        self._now = start_ns
        self._oversleep = oversleep

    def now_ns(self) -> int:
        return self._now

    def sleep_until(
        self, deadline_ns: int, spin_ns: int = 0, waker: ScanWaker | None = None
    ) -> int:
        if self._oversleep is None:
            if deadline_ns > self._now:
                self._now = deadline_ns
                return 0
            return -1
        target = deadline_ns - spin_ns
        late = -1
        if target > self._now:
            late = max(0, self._oversleep())
            self._now = target + late
        if spin_ns and self._now < deadline_ns:
            self._now = deadline_ns
        return late

    def charge(self, ns: int) -> None:
        self._now += ns

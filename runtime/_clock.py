"""Clocks for the scan engine: the real monotonic clock and a virtual clock for tests/benches."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Time source plus the way to wait for a deadline; all values are integer nanoseconds."""

    virtual: bool

    def now_ns(self) -> int: ...

    def sleep_until(self, deadline_ns: int, spin_ns: int = 0) -> None: ...


class RealClock:
    """CLOCK_MONOTONIC. Sleeps to ``spin_ns`` before the deadline, then busy-waits.

    The OS wakes a sleeping thread 50–150 µs late on a non-RT kernel (DESIGN.md §3); spinning
    the last stretch trades CPU for wake-up precision, per task, only where asked.
    """

    virtual = False

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_until(self, deadline_ns: int, spin_ns: int = 0) -> None:
        remaining = deadline_ns - spin_ns - time.monotonic_ns()
        if remaining > 0:
            time.sleep(remaining / 1e9)
        if spin_ns:
            while time.monotonic_ns() < deadline_ns:
                pass


class VirtualClock:
    """Simulated time: sleeping jumps straight to the deadline, so runs go as fast as the CPU.

    ``charge(ns)`` lets a test pretend a program took time, which is how overruns are tested
    deterministically without depending on the machine's speed.
    """

    virtual = True

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def sleep_until(self, deadline_ns: int, spin_ns: int = 0) -> None:
        if deadline_ns > self._now:
            self._now = deadline_ns

    def charge(self, ns: int) -> None:
        self._now += ns

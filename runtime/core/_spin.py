"""Adaptive spin: learn how late the OS wakes a task's sleeps and spin only that long.

A task sleeps until (release − margin), then busy-waits to the release. A fixed margin must
cover the worst lateness the machine ever shows, so it burns CPU on every quiet cycle; an
adaptive margin follows a high percentile (p99.9) of the lateness seen over the last
``WINDOW`` sleeps, bounded by the task's ``spin_us`` and by zero. The window is a ring of
bucket numbers plus a histogram of them: recording a sleep is a few list stores (the bucket
numbers are small cached ints, so nothing is allocated), and the percentile is recomputed
every ``_EVERY`` samples, or at once when a wake-up overshot the margin (load arriving).
"""

from __future__ import annotations

from enum import StrEnum

from runtime.core._clock import Clock, Waker

WINDOW = 4096  # sleeps remembered: 4 s at 1 ms, so a burst is forgotten 4 s after it ends
QUANTILE = 0.999  # the lateness the margin covers; the rest wake late by the excess
WARMUP = 256  # sleeps before the margin leaves its bound (spin_us): precise from the start
DEFAULT_CAP_NS = 300_000  # bound when the app gives no spin_us: the non-RT lateness
_EVERY = 32  # samples between two percentile computations (amortised scan of the buckets)
_FINE = 32  # lateness under 32 µs has 1 µs buckets; above, 16 buckets per power of two
_SUB = 16
_LAST_US = 8191  # anything later falls in the last bucket (spin_us is at most 5000 µs)
_NBUCKETS = _FINE + (_LAST_US.bit_length() - 5) * _SUB


class SpinMode(StrEnum):
    """How a task chooses the stretch it busy-waits before each release (README)."""

    ADAPTIVE = "adaptive"  # p99.9 of the observed sleep lateness, bounded by spin_us
    FIXED = "fixed"  # always spin_us (the pre-adaptive behaviour of --spin-us N)
    OFF = "off"  # plain sleep: no busy-wait at all


def _bucket(late_ns: int) -> int:
    us = late_ns // 1000
    if us < _FINE:
        return us if us > 0 else 0
    if us >= _LAST_US:
        return _NBUCKETS - 1
    e = us.bit_length()
    return _FINE + (e - 6) * _SUB + ((us >> (e - 5)) & (_SUB - 1))


def _upper_ns(index: int) -> int:
    """The upper edge of a bucket: a margin at it covers every sample in the bucket."""
    if index < _FINE:
        return (index + 1) * 1000
    octave, sub = divmod(index - _FINE, _SUB)
    return ((_SUB + 1 + sub) << (octave + 1)) * 1000


_UPPER_NS = tuple(_upper_ns(i) for i in range(_NBUCKETS))


def default_cap_ns(period_ns: int) -> int:
    """The bound of an adaptive spin when the app gives none: never a quarter of the period."""
    return min(DEFAULT_CAP_NS, period_ns // 4)


class AdaptiveSpin:
    """One task's wake margin: fixed, off, or learnt from the lateness of its sleeps."""

    __slots__ = ("_counts", "_due", "_n", "_pos", "_ring", "cap_ns", "margin_ns", "mode")

    def __init__(self, cap_ns: int, mode: SpinMode = SpinMode.ADAPTIVE) -> None:
        self._ring = [0] * WINDOW
        self._counts = [0] * _NBUCKETS
        self._n = 0
        self._pos = 0
        self._due = _EVERY
        self.cap_ns = 0
        self.mode = mode
        self.margin_ns = 0
        self.configure(cap_ns, mode)

    def configure(self, cap_ns: int, mode: SpinMode) -> None:
        """Take a new bound or mode (an online change's retime, an operator's flag)."""
        self.cap_ns = max(0, cap_ns)
        self.mode = mode
        self._update()

    def record(self, late_ns: int) -> None:
        """A sleep ended ``late_ns`` after the time it was asked to end at."""
        index = _bucket(late_ns)
        pos = self._pos
        counts = self._counts
        if self._n == WINDOW:
            counts[self._ring[pos]] -= 1
        else:
            self._n += 1
        self._ring[pos] = index
        counts[index] += 1
        self._pos = (pos + 1) % WINDOW
        self._due -= 1
        if self._due <= 0 or (late_ns > self.margin_ns and self.margin_ns < self.cap_ns):
            self._update()

    def percentile_ns(self, q: float = QUANTILE) -> int:
        """The upper bucket edge under which a fraction ``q`` of the window's samples lie."""
        allowed = int(self._n * (1.0 - q))
        above = 0
        counts = self._counts
        for index in range(_NBUCKETS - 1, -1, -1):
            above += counts[index]
            if above > allowed:
                return _UPPER_NS[index]
        return 0

    def _update(self) -> None:
        self._due = _EVERY
        if self.mode is SpinMode.OFF:
            self.margin_ns = 0
        elif self.mode is SpinMode.FIXED or self._n < WARMUP:
            self.margin_ns = self.cap_ns
        else:
            self.margin_ns = min(self.cap_ns, self.percentile_ns())

    def reset(self) -> None:
        """Forget what was learnt (a new machine state, e.g. after the real-time settings)."""
        self._counts = [0] * _NBUCKETS
        self._n = 0
        self._pos = 0
        self._update()

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode.value,
            "bound_us": self.cap_ns / 1000,
            "margin_us": self.margin_ns / 1000,
            "sleep_lateness_p99_us": self.percentile_ns(0.99) / 1000 if self._n else None,
            "sleep_lateness_p99_9_us": self.percentile_ns(0.999) / 1000 if self._n else None,
            "samples": self._n,
        }


def sleep_to(clock: Clock, spin: AdaptiveSpin, deadline_ns: int, waker: Waker | None) -> None:
    """Sleep to ``deadline_ns`` with the task's current margin and learn from the wake-up."""
    late = clock.sleep_until(deadline_ns, spin.margin_ns, waker)
    if late >= 0:  # the sleep ran to its end (not woken for a command, not already past)
        spin.record(late)

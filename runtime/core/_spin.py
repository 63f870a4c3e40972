"""Adaptive spin: learn how late the OS wakes a task's sleeps and spin only that long.

A task sleeps until (release − margin), then busy-waits to the release; every µs of margin
the sleep did not use is a µs of CPU burnt per cycle. On a VM the lateness is bursty: a
narrow body (tens of µs) and rare stalls of several hundred µs that come in clusters. A
margin at the window's p99.9 is then "the 5th-worst stall of the last 4 s" and spins that
long on every quiet cycle (measured: ~155 µs a cycle at 1 ms, 15 % CPU). So the margin is
the larger of two terms, bounded by the task's ``spin_us`` and by zero:

* the base, a high percentile (``QUANTILE``, p99) of the lateness seen over the last
  ``WINDOW`` sleeps: a ring of bucket numbers plus a histogram (recording is a few list
  stores, nothing allocated), the percentile recomputed every ``_EVERY`` samples. Where the
  task's CPU budget allows (``budget_ns``, by default ``BUDGET`` of the period), the base
  rises towards the window's p99.9 (``TAIL_QUANTILE``): with a tight lateness distribution
  (a real-time kernel, a CPU latency limit) covering the tail costs a few µs a cycle, and
  the budget keeps a wide one from costing more than it;
* a burst hold: a sleep that woke later than the margin raises the hold at once to its own
  lateness plus ``GUARD_NS`` (the stalls that follow it in the same burst are covered), and
  the hold stays until ``_HOLD`` sleeps in a row came within the base, then decays by 1/32
  per sleep back to it (~50 sleeps from 300 to 60 µs). A stall over twice the bound does
  not raise it: spinning the bound would cover less than half of such stalls (a loaded
  host's milliseconds) and burn the bound on every cycle of the burst.
"""

from __future__ import annotations

from enum import StrEnum

from runtime.core._clock import Clock, ScanWaker

WINDOW = 4096  # sleeps remembered: 4 s at 1 ms, so a burst is forgotten 4 s after it ends
QUANTILE = 0.99  # the base covers this much of the lateness; the burst hold covers clusters
TAIL_QUANTILE = 0.999  # ... and this much where it fits in the CPU budget
BUDGET = 0.03  # of the period: how far the base may rise above QUANTILE towards the tail
GUARD_NS = 5_000  # above an overshooting sleep's lateness: the next one of a burst is a bit later
_HOLD = 16  # sleeps within the base after the last one that needed the hold, before it decays
_DECAY_SHIFT = 5  # then it loses 1/32 of itself per sleep that came within the margin
WARMUP = 256  # sleeps before the margin leaves its bound (spin_us): precise from the start
DEFAULT_CAP_NS = 300_000  # bound when the app gives no spin_us: the non-RT lateness
_EVERY = 32  # samples between two percentile computations (amortised scan of the buckets)
_FINE = 32  # lateness under 32 µs has 1 µs buckets; above, 16 buckets per power of two
_SUB = 16
_LAST_US = 8191  # anything later falls in the last bucket (spin_us is at most 5000 µs)
_NBUCKETS = _FINE + (_LAST_US.bit_length() - 5) * _SUB


class SpinMode(StrEnum):
    """How a task chooses the stretch it busy-waits before each release (README)."""

    ADAPTIVE = "adaptive"  # p99 of the sleep lateness, raised during bursts, bounded by spin_us
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

    __slots__ = (
        "_base_ns",
        "_budget_ns",
        "_counts",
        "_due",
        "_hold_ns",
        "_n",
        "_pos",
        "_quiet",
        "_ring",
        "cap_ns",
        "margin_ns",
        "mode",
        "sleeps",
        "spun_ns",
    )

    def __init__(self, cap_ns: int, mode: SpinMode = SpinMode.ADAPTIVE, budget_ns: int = 0) -> None:
        self._ring = [0] * WINDOW
        self._counts = [0] * _NBUCKETS
        self._n = 0
        self._pos = 0
        self._due = _EVERY
        self._base_ns = 0  # the window's QUANTILE, raised within budget: every _EVERY samples
        self._budget_ns = 0
        self._hold_ns = 0  # the burst hold: 0 once it has decayed under the base
        self._quiet = 0  # sleeps since the last one that overshot the margin
        self.spun_ns = 0  # margin the sleeps did not use: the busy-wait's CPU, estimated
        self.sleeps = 0
        self.cap_ns = 0
        self.mode = mode
        self.margin_ns = 0
        self.configure(cap_ns, mode, budget_ns)

    def configure(self, cap_ns: int, mode: SpinMode, budget_ns: int = 0) -> None:
        """Take a new bound, mode or tail budget (an online change's retime, a flag)."""
        self.cap_ns = max(0, cap_ns)
        self.mode = mode
        self._budget_ns = max(0, budget_ns)
        self._update()

    def learn(self, late_ns: int) -> None:
        """``record`` a sleep's lateness; -1 (a sleep cut short or not taken) teaches nothing."""
        if late_ns >= 0:
            self.record(late_ns)

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
        margin = self.margin_ns
        self.sleeps += 1
        if late_ns < margin:
            self.spun_ns += margin - late_ns
        self._due -= 1
        if self.mode is SpinMode.ADAPTIVE and (late_ns > margin or self._hold_ns):
            self._follow_burst(late_ns, margin)
        elif self._due <= 0:
            self._update()

    def _follow_burst(self, late_ns: int, margin: int) -> None:
        """Raise the hold on an overshoot; keep it while needed, then decay it to the base."""
        hold = self._hold_ns
        if late_ns > margin:  # a burst arriving: cover it from the next sleep on
            if late_ns + GUARD_NS > hold and late_ns <= 2 * self.cap_ns:
                self._hold_ns = late_ns + GUARD_NS
            self._quiet = 0
        elif late_ns > self._base_ns:  # the hold was needed: the burst goes on
            self._quiet = 0
        else:
            self._quiet += 1
            if self._quiet > _HOLD:  # the burst is over: decay back to the base
                hold -= (hold >> _DECAY_SHIFT) + 1
                self._hold_ns = hold if hold > self._base_ns else 0
        if self._due <= 0:
            self._update()
        else:
            self._settle()

    def percentile_ns(self, q: float = QUANTILE) -> int:
        """The upper bucket edge under which a fraction ``q`` of the window's samples lie."""
        return self._percentiles_ns(q, q)[0]

    def _update(self) -> None:
        self._due = _EVERY
        if not self._n:
            self._base_ns = 0
        else:
            body, tail = self._percentiles_ns(QUANTILE, TAIL_QUANTILE)
            self._base_ns = max(body, min(tail, self._budget_ns))
        self._settle()

    def _percentiles_ns(self, low: float, high: float) -> tuple[int, int]:
        """The percentiles ``low`` and ``high`` (>= low) in one pass over the buckets."""
        n = self._n
        allow_high, allow_low = int(n * (1.0 - high)), int(n * (1.0 - low))
        above, hi = 0, -1
        counts = self._counts
        for index in range(_NBUCKETS - 1, -1, -1):
            above += counts[index]
            if hi < 0 and above > allow_high:
                hi = _UPPER_NS[index]
            if above > allow_low:
                return _UPPER_NS[index], hi
        return 0, max(hi, 0)

    def _settle(self) -> None:
        if self.mode is SpinMode.OFF:
            self.margin_ns = 0
        elif self.mode is SpinMode.FIXED or self._n < WARMUP:
            self.margin_ns = self.cap_ns
        else:
            base, hold = self._base_ns, self._hold_ns
            self.margin_ns = min(self.cap_ns, hold if hold > base else base)

    def reset(self) -> None:
        """Forget what was learnt (a new machine state, e.g. after the real-time settings)."""
        self._counts = [0] * _NBUCKETS
        self._n = 0
        self._pos = 0
        self._hold_ns = 0
        self._update()

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode.value,
            "bound_us": self.cap_ns / 1000,
            "margin_us": self.margin_ns / 1000,
            "base_us": self._base_ns / 1000,  # p99, raised in budget: what the margin decays to
            "tail_budget_us": self._budget_ns / 1000,
            "burst_hold_us": self._hold_ns / 1000,
            # the margin the sleeps did not use, i.e. the busy-wait per sleep (CPU), estimated
            "mean_spin_us": round(self.spun_ns / self.sleeps / 1000, 1) if self.sleeps else None,
            "sleep_lateness_p99_us": self.percentile_ns(0.99) / 1000 if self._n else None,
            "sleep_lateness_p99_9_us": self.percentile_ns(0.999) / 1000 if self._n else None,
            "samples": self._n,
        }


def sleep_to(clock: Clock, spin: AdaptiveSpin, deadline_ns: int, waker: ScanWaker | None) -> int:
    """Sleep to ``deadline_ns`` with the task's current margin: the lateness to ``learn``.

    -1 when the sleep did not run to its end (woken for a command, already past). The
    caller learns after running the cycle the sleep released, so learning never delays it.
    """
    return clock.sleep_until(deadline_ns, spin.margin_ns, waker)

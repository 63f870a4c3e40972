"""Task statistics: a log-linear latency histogram and per-task counters, allocation-free."""

from __future__ import annotations

from typing import Any

_SUB_BITS = 5  # 32 sub-buckets per power of two: ≤ ~3 % error on a percentile
_SUB = 1 << _SUB_BITS
_BUCKETS = (64 - _SUB_BITS) * _SUB
_NO_MIN = 1 << 64  # above any value a bucket can hold: the first record always sets the min


def _lower_bound(i: int) -> int:
    if i < _SUB:
        return i
    shift = (i >> _SUB_BITS) - 1
    return (_SUB + (i & (_SUB - 1))) << shift


class HistogramBase:
    """What a task histogram offers: ``record`` and ``reset`` (by the storage class), and the
    percentiles and summary worked out here from ``counts``, ``count``, ``min``, ``max``,
    ``total``."""

    __slots__ = ()
    counts: list[int]
    max: int
    total: int

    def record(self, v: int) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    @property
    def count(self) -> int:
        raise NotImplementedError

    @property
    def min(self) -> int:
        raise NotImplementedError

    def percentile(self, q: float) -> int:
        """Upper bound of the bucket holding the q-quantile (0 < q ≤ 1), capped at max."""
        count = self.count
        if count == 0:
            return 0
        rank = max(1, int(q * count + 0.999999))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(_lower_bound(i + 1) - 1, self.max) if i + 1 < _BUCKETS else self.max
        return self.max

    def summary_us(self) -> dict[str, float]:
        """min/avg/max/p50/p99/p99.9 in microseconds (rounded to 0.1 µs)."""
        count = self.count
        avg = self.total / count if count else 0.0

        def us(ns: float) -> float:
            return round(ns / 1000.0, 1)

        return {
            "min": us(self.min),
            "avg": us(avg),
            "max": us(self.max),
            "p50": us(self.percentile(0.50)),
            "p99": us(self.percentile(0.99)),
            "p99_9": us(self.percentile(0.999)),
        }


class PyHistogram(HistogramBase):
    """Records non-negative integers (ns) in O(1) without allocating; reports percentiles.

    The pure-Python reference of the compiled ``HistogramCore`` (runtime/core/_histogram.pyx).
    ``record`` runs twice per task cycle, so it touches as few attributes as it can: the
    count is the sum of the buckets and the minimum starts above any value, both worked
    out when read (reports, a few times a second at most).
    """

    __slots__ = ("_min", "counts", "max", "total")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.reset()

    def reset(self) -> None:
        for i in range(_BUCKETS):
            self.counts[i] = 0
        self.total = 0
        self._min = _NO_MIN
        self.max = 0

    def record(self, v: int) -> None:
        # the bucket index inline: two records per task cycle, and a call costs as much
        if v < _SUB:
            if v < 0:
                v = 0
            self.counts[v] += 1
        else:
            shift = v.bit_length() - _SUB_BITS - 1
            self.counts[((shift + 1) << _SUB_BITS) + ((v >> shift) - _SUB)] += 1
        if v < self._min:
            self._min = v
        if v > self.max:
            self.max = v
        self.total += v

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def min(self) -> int:
        return 0 if self._min == _NO_MIN else self._min


Histogram: type[HistogramBase]
IMPLEMENTATION = "python"  # which Histogram the tasks use: 'cython' or 'python'
try:  # the C core when it was built at install time (setup.py), else the reference
    from runtime.core._histogram import HistogramCore

    class CHistogram(HistogramCore, HistogramBase):
        """The C core (buckets, ``record``) with the reports."""

        __slots__ = ()

    Histogram = CHistogram
    IMPLEMENTATION = "cython"
except ImportError:
    Histogram = PyHistogram


class TaskStatistics:
    """What a task reports: cycles, overruns, skipped releases, execution time, wake latency."""

    __slots__ = ("cycles", "exec_hist", "faults", "latency_hist", "overruns", "skipped")

    def __init__(self) -> None:
        self.exec_hist = Histogram()
        self.latency_hist = Histogram()
        self.reset()

    def reset(self) -> None:
        self.cycles = 0
        self.overruns = 0
        self.skipped = 0
        self.faults = 0
        self.exec_hist.reset()
        self.latency_hist.reset()

    def as_dict(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "overruns": self.overruns,
            "skipped_releases": self.skipped,
            "faults": self.faults,
            "exec_us": self.exec_hist.summary_us(),
            "wake_latency_us": self.latency_hist.summary_us(),
        }

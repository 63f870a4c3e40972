"""Trends: an in-memory ring of every point (the last hour by default), and CSV traces for older."""

from __future__ import annotations

import csv
import math
from array import array
from pathlib import Path
from typing import Any

__all__ = ["TrendRing", "read_traces"]

MAX_SAMPLES_OUT = 2000  # per point per answer: a browser plots no more pixels than that


class TrendRing:
    """``period_s`` samples of every numeric point over ``span_s`` (shortened to ``max_mb``).

    One ``array('d')`` per point plus one of times: 8 bytes a sample, preallocated, so a
    long run never grows the process. Non-numeric values are stored as NaN (a gap).
    """

    def __init__(self, n_points: int, *, span_s: float, period_s: float, max_mb: float) -> None:
        self.period_s = period_s
        wanted = max(2, math.ceil(span_s / period_s))
        fits = int(max_mb * 1e6 / 8 / (n_points + 1))
        self.size = max(2, min(wanted, fits))
        self.span_s = self.size * period_s
        self.times = array("d", [math.nan]) * self.size
        self.series = [array("d", [math.nan]) * self.size for _ in range(n_points)]
        self.head = 0  # next slot to write
        self.count = 0
        self.next_t = -math.inf

    def record(self, t: float, values: list[Any]) -> None:
        if t < self.next_t:
            return
        if t < self.next_t - self.period_s or self.next_t == -math.inf:
            self.next_t = t  # first sample, or app time went back (a restart): start over
        self.next_t += self.period_s
        if self.next_t <= t:  # a gap (the web process was busy): do not fill it in
            self.next_t = t + self.period_s
        h = self.head
        self.times[h] = t
        for series, v in zip(self.series, values, strict=False):
            series[h] = float(v) if isinstance(v, int | float) and v is not None else math.nan
        self.head = (h + 1) % self.size
        self.count = min(self.count + 1, self.size)

    def query(self, indices: list[int], t0: float, t1: float) -> dict[str, Any]:
        """Samples of ``indices`` with ``t0 <= t <= t1``, thinned to MAX_SAMPLES_OUT."""
        start = (self.head - self.count) % self.size
        slots = [(start + k) % self.size for k in range(self.count)]
        slots = [s for s in slots if t0 <= self.times[s] <= t1]
        step = max(1, math.ceil(len(slots) / MAX_SAMPLES_OUT))
        slots = slots[::step]
        return {
            "t": [self.times[s] for s in slots],
            "series": {i: [_jsonable(self.series[i][s]) for s in slots] for i in indices},
            "oldest": self.times[start] if self.count else None,
        }

    def statistics(self) -> dict[str, Any]:
        return {"samples": self.count, "size": self.size, "span_s": self.span_s}


def _jsonable(v: float) -> float | None:
    return v if math.isfinite(v) else None


def read_traces(files: list[Path], names: list[str], t0: float, t1: float) -> dict[str, Any]:
    """Rows of ``vplc run --trace`` CSV files with ``t0 <= t <= t1``, for older trend data."""
    times: list[float] = []
    series: dict[str, list[float | None]] = {n: [] for n in names}
    for path in files:
        try:
            fh = path.open(newline="", encoding="utf-8")
        except OSError:
            continue
        with fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or header[0] != "t":
                continue
            cols = {n: header.index(n) for n in names if n in header}
            for row in reader:
                try:
                    t = float(row[0])
                except (ValueError, IndexError):
                    continue
                if not t0 <= t <= t1:
                    continue
                times.append(t)
                for n in names:
                    series[n].append(_cell(row, cols.get(n)))
    step = max(1, math.ceil(len(times) / MAX_SAMPLES_OUT))
    return {"t": times[::step], "series": {n: s[::step] for n, s in series.items()}}


def _cell(row: list[str], col: int | None) -> float | None:
    if col is None or col >= len(row):
        return None
    try:
        v = float(row[col])
    except ValueError:
        return None
    return v if math.isfinite(v) else None

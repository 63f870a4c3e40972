"""OS real-time knobs for the scan thread: SCHED_FIFO, CPU affinity, timer slack, GC control."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Sequence

import structlog

_PR_SET_TIMERSLACK = 29
_GEN0_SLACK_NS = 300_000
_GEN1_SLACK_NS = 2_000_000
log = structlog.get_logger("vplc.rt")


def apply_thread_realtime(
    *, fifo_priority: int, cpus: Sequence[int], timer_slack_ns: int
) -> dict[str, str]:
    """Apply what the OS permits to the calling thread; report each knob as set or why not.

    Each knob falls back on its own with a logged warning (unprivileged containers forbid
    SCHED_FIFO but allow the rest), so the runtime always starts.
    """
    report: dict[str, str] = {}
    if fifo_priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo_priority))
            report["sched"] = f"SCHED_FIFO {fifo_priority}"
        except (OSError, AttributeError) as exc:
            report["sched"] = f"SCHED_OTHER (SCHED_FIFO refused: {exc})"
            log.warning("realtime_fallback", knob="SCHED_FIFO", reason=str(exc))
    else:
        report["sched"] = "SCHED_OTHER"
    if cpus:
        try:
            os.sched_setaffinity(0, set(cpus))
            report["affinity"] = ",".join(map(str, cpus))
        except (OSError, ValueError) as exc:
            report["affinity"] = f"any (refused: {exc})"
            log.warning("realtime_fallback", knob="affinity", cpus=list(cpus), reason=str(exc))
    report["timer_slack"] = _set_timer_slack(timer_slack_ns)
    return report


def _set_timer_slack(ns: int) -> str:
    name = ctypes.util.find_library("c")
    if name is None:
        return "default (libc not found)"
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        if libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) != 0:
            err = ctypes.get_errno()
            log.warning("realtime_fallback", knob="timer_slack", errno=err)
            return f"default (prctl errno {err})"
    except (OSError, AttributeError) as exc:
        return f"default ({exc})"
    return f"{ns} ns"


class GcControl:
    """Keeps the cyclic garbage collector out of the scan: freeze, then collect in slack time."""

    __slots__ = ("_base", "collections", "enabled", "threshold")

    def __init__(self, *, enabled: bool, threshold: int = 700) -> None:
        self.enabled = enabled
        self.threshold = threshold
        self.collections = [0, 0, 0]  # the ones maybe_collect ran, per generation
        self._base = _process_collections()

    def freeze(self) -> None:
        """Move everything allocated at start-up out of the collector's sight."""
        if self.enabled:
            gc.collect()
            gc.freeze()
            gc.disable()
        self._base = _process_collections()  # the start-up collection is not the scan's

    def process_collections(self) -> list[int]:
        """Collections per generation in the whole process since start (or ``freeze``).

        Counts the automatic ones too (virtual time, a disabled GcControl, other threads), so
        a run can show that the collector stayed out of the scan, not just that we did not
        call it.
        """
        now = _process_collections()
        return [n - b for n, b in zip(now, self._base, strict=True)]

    def maybe_collect(self, slack_ns: int) -> None:
        """Collect the young generation when the next release is far enough away.

        A young-generation pass costs tens of µs, an older one up to milliseconds; a full
        collection never runs in the scan. If slack never comes (a task that uses its whole
        period), collect anyway once garbage reaches ten thresholds, so memory stays bounded.
        """
        if not self.enabled:
            return
        g0, g1, _ = gc.get_count()
        if g0 < self.threshold:
            return
        if slack_ns < _GEN0_SLACK_NS and g0 < 10 * self.threshold:
            return
        gen = 1 if g1 >= 10 and slack_ns >= _GEN1_SLACK_NS else 0
        gc.collect(gen)
        self.collections[gen] += 1

    def release(self) -> None:
        if self.enabled:
            gc.enable()
            gc.unfreeze()


def _process_collections() -> list[int]:
    return [int(g["collections"]) for g in gc.get_stats()]

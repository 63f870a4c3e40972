"""A front-end's link thread follows a real-time scan to SCHED_FIFO 1 (it shares the GIL)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from runtime.core._rt import HELPER_FIFO_PRIORITY, follow_scan_realtime


def _in_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(10)
    return out[0]


def _fifo_scan(ready: threading.Event, done: threading.Event, tid: list[int]) -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except OSError:
        tid.append(-1)
    else:
        tid.append(threading.get_native_id())
    ready.set()
    done.wait(10)


def test_the_link_thread_runs_at_fifo_1_while_the_scan_is_fifo_and_its_children_do_not() -> None:
    ready, done, tid = threading.Event(), threading.Event(), []
    scan = threading.Thread(target=_fifo_scan, args=(ready, done, tid))
    scan.start()
    try:
        ready.wait(10)
        if tid[0] < 0:
            pytest.skip("SCHED_FIFO is not permitted here (no CAP_SYS_NICE, RLIMIT_RTPRIO 0)")

        def link() -> tuple[str | None, int, int, str]:
            applied = follow_scan_realtime(tid[0])
            policy = os.sched_getscheduler(0)
            prio = os.sched_getparam(0).sched_priority
            child = subprocess.run(
                [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            return applied, policy, prio, child

        applied, policy, prio, child = _in_thread(link)
        assert applied == f"SCHED_FIFO {HELPER_FIFO_PRIORITY}"
        assert policy & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO and prio == HELPER_FIFO_PRIORITY
        assert child == str(os.SCHED_OTHER)  # reset on fork: a spawned child is ordinary
    finally:
        done.set()
        scan.join(10)


def test_an_ordinary_scan_leaves_the_link_thread_ordinary() -> None:
    def link() -> tuple[str | None, int]:
        return follow_scan_realtime(threading.get_native_id()), os.sched_getscheduler(0)

    applied, policy = _in_thread(link)
    assert applied is None and policy == os.SCHED_OTHER

"""Polling helpers of the network driver tests: wait for a condition, latch inputs until one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> float:
    """Poll ``pred`` every 5 ms; the seconds it took (AssertionError after ``timeout``)."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - t0


def latch_until(driver: Any, pred: Callable[[], bool], timeout: float = 5.0) -> float:
    """Let the scan side latch ``driver``'s inputs until ``pred`` holds; the seconds it took."""

    def step() -> bool:
        driver.read_inputs(time.monotonic_ns())
        return pred()

    return wait(step, timeout)

"""Running work on the scan thread between cycles, preferably in the slack right after one."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from runtime.core._engine import ScanEngine
from runtime.core._task import Task

T = TypeVar("T")


def between_cycles(
    engine: ScanEngine,
    fn: Callable[[ScanEngine], T],
    timeout: float | None = None,
    *,
    slack: bool = True,
) -> T:
    """Run ``fn(engine)`` on the scan thread between two cycles and return its result.

    Without a scan thread (virtual time, before start, after join) it runs at once. With one,
    ``slack=True`` runs it as soon as the fastest task's next cycle ends; a plain ``submit``
    would run it when the scan wakes for the next release and delay that cycle by its cost.
    Waits at most ``timeout`` seconds (default: 5 s plus three periods of the fastest task).
    """
    if not engine.running:
        return fn(engine)
    if timeout is None:
        timeout = 5.0 + 3 * engine.fastest.period_ns / 1e9
    if not slack:
        result: T = engine.submit(fn).result(timeout)
        return result
    outcome: Future[T] = Future()

    def after_cycle(t: Task, now_ns: int) -> None:
        handle.remove()  # one shot
        engine.submit(fn).add_done_callback(lambda f: _chain(f, outcome))

    handle = engine.add_cycle_hook(after_cycle)
    return outcome.result(timeout)


def _chain(source: Future[Any], target: Future[Any]) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())

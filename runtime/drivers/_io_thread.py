"""The I/O thread of a network driver's link (``modbus``, ``opcua``): its own asyncio loop,
running the link's reconnecting ``_run`` until ``stop``."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from typing import Any, ClassVar

__all__ = ["IoThread", "backoff", "pause", "until_first"]


def backoff(delay: float, floor: float, cap: float) -> float:
    """The wait before the next reconnect after ``delay``: doubled from ``floor``, capped at
    ``cap``, jittered down ≤ 20 % so a fleet of drivers does not reconnect in step."""
    return min(cap, max(floor, 2 * delay)) * random.uniform(0.8, 1.0)


async def pause(stop: asyncio.Event, delay: float) -> bool:
    """Wait ``delay`` s (none when 0) unless ``stop`` is set first; True when stopped."""
    if delay:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return stop.is_set()


async def until_first(tasks: list[asyncio.Task[Any]], stop: asyncio.Event) -> BaseException | None:
    """Run a session's ``tasks`` until one of them ends or ``stop`` is set; cancel and reap
    them all. Returns the error an ended task raised (the session is lost), else None."""
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in [*tasks, stopper]:
            t.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
    for t in done:
        if t is not stopper and t.exception() is not None:
            return t.exception()
    return None


class IoThread:
    """``start`` runs ``self._run(stop)`` on a daemon thread's own event loop; ``stop`` sets
    that event from the caller's thread and joins ≤ timeout + ``opts.timeout_s`` (the run's
    last write of the outputs, the safe values the engine put there, has that long)."""

    THREAD: ClassVar[str]  # the thread's name before "-<driver>": "modbus-io"
    name: str
    opts: Any  # a driver's options: its timeout_s bounds the last request
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None

    async def _run(self, stop: asyncio.Event) -> None:
        raise NotImplementedError

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            async def run() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                ready.set()
                await self._run(self._stop)

            asyncio.run(run())

        self._thread = threading.Thread(target=main, name=f"{self.THREAD}-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(5.0)

    def stop(self, timeout: float) -> None:
        """A last write of the outputs (the safe values the engine put there), then close."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout + self.opts.timeout_s)

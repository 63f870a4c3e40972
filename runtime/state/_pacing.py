"""Keep an off-thread prepare from delaying the scan: work in the slack after each cycle."""

from __future__ import annotations

import sys
import threading
from types import TracebackType

from runtime.core._engine import ScanEngine
from runtime.core._handles import Handle
from runtime.core._task import Task

_SWITCH_S = 0.0005  # while preparing, a waiting scan thread gets the GIL within ~0.5 ms
_lock = threading.Lock()
_users = 0
_saved = 0.0


class Pacer:
    """Context manager for a prepare running beside a threaded scan.

    Another busy Python thread delays the scan by up to the GIL switch interval (5 ms by
    default, DESIGN.md §3), and longer on a loaded machine. Two things keep a prepare out of
    the way: ``step()`` waits for the end of the fastest task's next cycle, so each chunk of
    work starts at the beginning of the slack; and the switch interval is shortened while
    any prepare runs. Without a scan thread (virtual time) both are no-ops.
    """

    def __init__(self, engine: ScanEngine) -> None:
        self.engine = engine
        self.active = engine.running
        self._event = threading.Event()
        self._timeout = 2 * engine.fastest.period_ns / 1e9 + 0.1
        self._handle: Handle | None = None

    def _hook(self, task: Task, now_ns: int) -> None:
        self._event.set()

    def __enter__(self) -> Pacer:
        global _users, _saved
        if self.active:
            with _lock:
                if _users == 0:
                    _saved = sys.getswitchinterval()
                    sys.setswitchinterval(min(_saved, _SWITCH_S))  # lower it, never raise it
                _users += 1
            self._handle = self.engine.add_cycle_hook(self._hook)
        return self

    def step(self) -> None:
        """Wait until a cycle has just ended (the start of the longest slack)."""
        if self.active and self.engine.running:
            self._event.clear()
            self._event.wait(self._timeout)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _users
        if not self.active:
            return
        if self._handle is not None:
            self._handle.remove()
        with _lock:
            _users -= 1
            if _users == 0:
                sys.setswitchinterval(_saved)

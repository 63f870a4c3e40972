"""Heartbeat file for ``vplc run --heartbeat FILE``: outside proof that the scan is running.

A cycle hook on the fastest task stores the wall time of the first and the latest cycle (one
float store per cycle); a thread writes them with the engine statistics as JSON every second,
atomically (temp file + rename), and once more after the engine closed. A container health
check reads the file (``python -m containers.health FILE``), and the deployment manager uses the
first/last cycle times to measure the output gap of a stop-and-restart update.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from runtime.core._engine import ScanEngine
from runtime.core._task import Task
from runtime.host._connections import mqtt_connections

__all__ = ["Heartbeat"]

log = structlog.get_logger("vplc.heartbeat")


class Heartbeat:
    """Writes ``engine.statistics()`` plus first/last cycle wall times to ``path`` periodically."""

    def __init__(self, engine: ScanEngine, path: Path, *, interval_s: float = 1.0) -> None:
        self.engine = engine
        self.path = Path(path)
        self.interval_s = interval_s
        self.first_cycle_at: float | None = None
        self.last_cycle_at: float | None = None
        self.written = 0
        self.failures = 0
        self.error = ""  # the reason of the latest failed write; "" once a write succeeds
        self._stop = threading.Event()
        # A file left by an earlier process (a previous container on the same volume) must not
        # look like this process's heartbeat; the host name check in the reader covers the rest.
        self.path.unlink(missing_ok=True)
        self._hook = engine.add_cycle_hook(self._on_cycle)
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def _on_cycle(self, task: Task, app_now: int) -> None:
        now = time.time()
        if self.first_cycle_at is None:
            self.first_cycle_at = now
        self.last_cycle_at = now

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write()

    def payload(self, *, stopped: bool = False) -> dict[str, Any]:
        stats = self.engine.statistics()
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "written_at": time.time(),
            "stopped": stopped,
            "app": stats["app"],
            "version": stats["version"],
            "state": stats["state"],
            "fault_reason": stats["fault_reason"],
            "app_time_s": stats["app_time_s"],
            "fastest_period_ms": self.engine.fastest.period_ns / 1e6,
            "first_cycle_at": self.first_cycle_at,
            "last_cycle_at": self.last_cycle_at,
            "cycles": {name: t["cycles"] for name, t in stats["tasks"].items()},
            "statistics": stats,
            # Connection state of every MQTT session (bridge, drivers): `vplc status` shows a
            # broker that refuses the login or a client-id collision without reading logs.
            "connections": mqtt_connections(),
        }

    def write(self, *, stopped: bool = False) -> bool:
        """One atomic write; False (logged once per episode, counted) when it failed."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.payload(stopped=stopped)), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            # A full or read-only volume must not stop the scan; the health check then fails,
            # which is the right signal, and the log says why.
            reason = exc.strerror or str(exc)
            self.failures += 1
            if not self.error:
                log.error("heartbeat_write_failed", path=str(self.path), reason=reason)
            self.error = reason
            return False
        if self.error:
            log.warning("heartbeat_write_recovered", path=str(self.path), failed=self.failures)
            self.error = ""
        self.written += 1
        return True

    def close(self) -> bool:
        """Stop the thread and write the final record (``stopped: true``, last cycle time);
        False when that write failed (``error`` says why)."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._hook.remove()
        return self.write(stopped=True)

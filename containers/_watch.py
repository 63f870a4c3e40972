"""Watching a started container: until healthy, then through its probation window.

Docker's HEALTHCHECK alone is too slow and too forgiving for a PLC: it ignores failures during
its start period and needs two failed probes in a row, so an app that faults a few seconds
after its first healthy probe was called healthy and its predecessor removed. Here the
deployer also reads the heartbeat (``vplc run --heartbeat``) itself, once a second: a FAULT,
a heartbeat that is no longer rewritten or a scan that no longer cycles fails at once, with
the runtime's own reason, and so do an exit, a restart or an unhealthy health check.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker.errors
from docker.models.containers import Container

from containers._image import LABEL, task_periods_ms
from containers._ops import read_heartbeat

__all__ = [
    "MIN_PROBATION_S",
    "PROBATION_CYCLES",
    "Health",
    "HeartbeatWatch",
    "probation_window_s",
    "probe",
    "stall_limit_s",
    "wait_healthy",
    "watch_probation",
]

MIN_PROBATION_S = 10.0
PROBATION_CYCLES = 20  # of the slowest task: every task has run often enough to show a fault
HEARTBEAT_EVERY_S = 1.0
POLL_S = 0.1


@dataclass
class Health:
    """Outcome of waiting for a container to become healthy (or to pass its probation)."""

    ok: bool
    reason: str
    seconds: float


def probation_window_s(configured: float | None, labels: dict[str, str]) -> float:
    """The configured window, else the longer of 10 s and 20 cycles of the slowest task."""
    if configured is not None:
        return configured
    periods = task_periods_ms(labels)
    slowest_s = max(periods.values(), default=0.0) / 1000.0
    return max(MIN_PROBATION_S, PROBATION_CYCLES * slowest_s)


def stall_limit_s(labels: dict[str, str]) -> float:
    """How long the heartbeat or the fastest task's cycles may stand still: 5 s or 3 periods."""
    fastest_ms = float(labels.get(LABEL + "fastest-period-ms") or 0.0)
    return max(5.0, 3 * fastest_ms / 1000.0)


@dataclass
class HeartbeatWatch:
    """The heartbeat as the deployer sees it: FAULT, stopped, or standing still too long."""

    container: Container
    stall_s: float
    every_s: float = HEARTBEAT_EVERY_S
    last: dict[str, Any] | None = None
    _next_read: float = 0.0
    _seen: dict[str, tuple[Any, float]] = field(default_factory=dict)

    def problem(self, *, require_run: bool) -> str | None:
        now = time.monotonic()
        if now < self._next_read:
            return None
        self._next_read = now + self.every_s
        beat = read_heartbeat(self.container)
        if beat is None or not _this_run(self.container, beat):
            return None
        self.last = beat
        state = beat.get("state")
        if state == "FAULT":
            return f"the runtime is in FAULT: {beat.get('fault_reason') or 'no reason given'}"
        if beat.get("stopped"):
            return "the engine stopped"
        if require_run and state != "RUN":
            return f"the runtime is in {state}, not RUN"
        for key, what in (("written_at", "heartbeat"), ("last_cycle_at", "scan")):
            value = beat.get(key)
            old = self._seen.get(key)
            if old is None or old[0] != value:
                self._seen[key] = (value, now)
            elif value is not None and now - old[1] > self.stall_s:
                return f"{what} stalled: unchanged for {now - old[1]:.1f} s"
        return None


def _this_run(container: Container, beat: dict[str, Any]) -> bool:
    """Whether ``beat`` was written by this run of this container.

    The file on the state volume may still be another container's (the previous version's
    final ``stopped`` record) or this container's own from before a restart (an automatic
    rollback restarts the old container): neither says anything about the scan now.
    """
    host = (container.attrs.get("Config") or {}).get("Hostname")
    if host and beat.get("host") != host:
        return False
    started = _epoch_s(str(container.attrs.get("State", {}).get("StartedAt", "")))
    return started is None or float(beat.get("written_at") or 0.0) >= started


def _epoch_s(rfc3339: str) -> float | None:
    """Docker's ``2026-12-06T02:41:59.547492123Z`` (nanoseconds) as seconds since the epoch."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", rfc3339)
    if m is None:
        return None
    whole = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return whole.timestamp() + float(m.group(2) or 0.0)


def _container_problem(container: Container, restarts0: int) -> str | None:
    """Exited, restarting, restarted or unhealthy: the engine's own view of the container."""
    try:
        container.reload()
    except docker.errors.NotFound:
        return "the container disappeared"
    attrs = container.attrs
    state = attrs["State"]
    if state["Status"] in ("exited", "dead") or state.get("Restarting"):
        return f"exited with code {state.get('ExitCode')}"
    if attrs.get("RestartCount", 0) > restarts0:
        return f"restarted {attrs['RestartCount'] - restarts0} time(s)"
    health = state.get("Health") or {}
    if health.get("Status") == "unhealthy":
        log = health.get("Log") or [{}]
        return f"unhealthy: {log[-1].get('Output', '').strip()}"
    return None


def wait_healthy(container: Container, *, timeout_s: float, stall_s: float = 5.0) -> Health:
    """Poll until the HEALTHCHECK says healthy; fail early on an exit, a restart or a FAULT."""
    t0 = time.monotonic()
    beat = HeartbeatWatch(container, stall_s=stall_s)
    while True:
        elapsed = time.monotonic() - t0
        problem = _container_problem(container, 0) or beat.problem(require_run=False)
        if problem is not None:
            return Health(False, f"{problem} after {elapsed:.1f} s", elapsed)
        if (container.attrs["State"].get("Health") or {}).get("Status") == "healthy":
            return Health(True, "healthy", elapsed)
        if elapsed > timeout_s:
            status = (container.attrs["State"].get("Health") or {}).get("Status")
            return Health(False, f"not healthy within {timeout_s:g} s (health: {status})", elapsed)
        time.sleep(POLL_S)


def probe(container: Container, *, stall_s: float) -> Callable[[], str | None]:
    """One probation check of a healthy container, for a loop that watches other things too
    (the blue-green handover also asks the new owner's handover status over MQTT)."""
    restarts0 = int(container.attrs.get("RestartCount", 0))
    beat = HeartbeatWatch(container, stall_s=stall_s)
    return lambda: _container_problem(container, restarts0) or beat.problem(require_run=True)


def watch_probation(container: Container, *, window_s: float, stall_s: float) -> Health:
    """Keep watching a healthy container for ``window_s``; the first problem ends the watch."""
    t0 = time.monotonic()
    check = probe(container, stall_s=stall_s)
    while (elapsed := time.monotonic() - t0) < window_s:
        problem = check()
        if problem is not None:
            return Health(False, f"{problem} ({elapsed:.1f} s into probation)", elapsed)
        time.sleep(POLL_S)
    return Health(True, f"probation of {window_s:g} s passed", time.monotonic() - t0)

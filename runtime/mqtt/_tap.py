"""The scan-side half of telemetry: a cycle hook that queues changed values, never blocking."""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from runtime.front import engine_alarms, engine_phases, follow_app

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine
    from runtime.core._task import Task

__all__ = [
    "KIND_ALARM",
    "KIND_PARAM",
    "KIND_PHASE",
    "KIND_POINT",
    "KIND_STATE",
    "TelemetryTap",
    "alarm_payload",
    "alarm_view",
]

_log = structlog.get_logger("vplc.mqtt")
_NEVER = object()  # equal to no value: the first sample sends every parameter
KIND_POINT, KIND_ALARM, KIND_STATE, KIND_PARAM, KIND_PHASE = 0, 1, 2, 3, 4
_KINDS = ("HH", "H", "L", "LL", "BAD")


def alarm_view(block: Any) -> tuple[Any, ...]:
    """What is published of an ALARM block (or anything with the same attributes)."""
    return (
        block.ACTIVE,
        block.UNACKED,
        block.SEVERITY,
        block.HH_ACTIVE,
        block.H_ACTIVE,
        block.L_ACTIVE,
        block.LL_ACTIVE,
        block.BAD_ACTIVE,
        block.TEXT,
    )


class TelemetryTap:
    """Runs on the scan thread after each cycle of the task it is attached to.

    Every ``sample_ns`` of app time it compares each point (value beyond its deadband,
    quality, forced flag), each ALARM block, each parameter value, each phase (state and step)
    and the lifecycle state against what it last queued, and appends the changes as tuples to
    a bounded deque. The deque is the only
    thing shared with the bridge thread: ``append``/``popleft`` are atomic under the GIL, so
    no lock is taken on the scan thread. When the deque is full a change is dropped and
    counted, and the last-queued value is left alone so the change is found again at the
    next sample: a drop delays a value, it never loses the latest one.
    """

    def __init__(
        self,
        points: Sequence[Any],
        alarms: Sequence[tuple[str, Any]],
        state: Callable[[], tuple[str, str]],
        *,
        deadbands: Mapping[str, float],
        sample_ns: int,
        capacity: int,
        params: Sequence[tuple[str, Any]] = (),
        phases: Sequence[tuple[str, Any]] = (),
        follow: Callable[[], Any] | None = None,
    ) -> None:
        """``follow`` returns the running app (``lambda: engine.app``): after an online change
        the alarms, phases and parameters are read from the new version's instances."""
        # Points (value/quality/forced), alarms (ALARM outputs), parameters (.value) and phases
        # (.state, .step) are duck-typed so the same
        # comparison runs on the scan thread over live objects and, in the out-of-process
        # bridge, in the child over mirrors filled from shared memory.
        self.points: list[Any] = list(points)
        self.deadbands = [float(deadbands.get(p.name, 0.0)) for p in self.points]
        self.numeric = [p.type.is_numeric for p in self.points]
        n = len(self.points)
        self.last_value: list[Any] = [p.value for p in self.points]
        self.last_quality: list[Any] = [None] * n  # None never matches: first sample sends all
        self.last_forced = [False] * n
        self.alarms: list[tuple[str, Any]] = list(alarms)
        self.state = state
        self.last_alarm: list[Any] = [None] * len(self.alarms)
        self.last_state: Any = None
        self.params: list[tuple[str, Any]] = list(params)
        self.last_param: list[Any] = [_NEVER] * len(self.params)
        self.phases: list[tuple[str, Any]] = list(phases)
        self.last_phase: list[Any] = [None] * len(self.phases)
        self.queue: deque[tuple[Any, ...]] = deque()
        self.capacity = capacity
        self.sample_ns = sample_ns
        self.next_sample_ns = 0
        self.refresh_requested = False
        self.enqueued = 0
        self.dropped = 0
        self.errors = 0
        self.last_error = ""
        self.samples = 0
        self._follow = follow
        self._app = follow() if follow is not None else None

    @classmethod
    def for_engine(
        cls, engine: ScanEngine, *, deadbands: Mapping[str, float], sample_ns: int, capacity: int
    ) -> TelemetryTap:
        """A tap over an engine's live points, ALARM blocks and lifecycle state."""
        return cls(
            engine.image.points,
            engine_alarms(engine),
            lambda: (engine.state.value, engine.fault_reason),
            deadbands=deadbands,
            sample_ns=sample_ns,
            capacity=capacity,
            params=list(engine.app.parameters.items()),
            phases=engine_phases(engine),
            follow=lambda: engine.app,
        )

    def request_refresh(self) -> None:
        """Queue every value at the next sample (called from the bridge thread)."""
        self.refresh_requested = True

    def __call__(self, task: Task, now_ns: int) -> None:
        if now_ns < self.next_sample_ns:
            return
        self.next_sample_ns = now_ns + self.sample_ns
        self.sample(now_ns)

    def sample(self, now_ns: int) -> None:
        """Compare now and queue the changes; never raises (an error is logged once, counted)."""
        try:
            self._sample(now_ns)
        except Exception as exc:
            # Telemetry must never disturb the scan; but a silent failure would leave the
            # dashboards frozen with nobody told: the first one is logged with its traceback.
            self.errors += 1
            self.last_error = repr(exc)
            if self.errors == 1:
                _log.error(
                    "telemetry_sample_failed",
                    error=self.last_error,
                    traceback=traceback.format_exc(),
                    note="later failures are only counted (statistics: errors)",
                )

    def _push(self, item: tuple[Any, ...]) -> bool:
        if len(self.queue) >= self.capacity:
            self.dropped += 1
            return False
        self.queue.append(item)
        self.enqueued += 1
        return True

    def _sample(self, now_ns: int) -> None:
        self.samples += 1
        if self._follow is not None and self._follow() is not self._app:
            self._app = app = self._follow()
            self.alarms, self.params, self.phases = follow_app(
                app, self.alarms, self.params, self.phases
            )
        full = self.refresh_requested
        self.refresh_requested = False
        missed = False
        last_v, last_q, last_f = self.last_value, self.last_quality, self.last_forced
        dbs, numeric = self.deadbands, self.numeric
        for i, p in enumerate(self.points):
            v, q, f = p.value, p.quality, p.forced
            if not full and q is last_q[i] and f is last_f[i]:
                last = last_v[i]
                if v == last or (v != v and last != last):
                    continue
                if numeric[i] and dbs[i] > 0 and abs(v - last) <= dbs[i]:
                    continue
            if self._push((KIND_POINT, i, v, q, f, now_ns)):
                last_v[i], last_q[i], last_f[i] = v, q, f
            else:
                missed = True
        for j, (_path, block) in enumerate(self.alarms):
            view = alarm_view(block)
            if full or view != self.last_alarm[j]:
                if self._push((KIND_ALARM, j, view, None, None, now_ns)):
                    self.last_alarm[j] = view
                else:
                    missed = True
        missed |= self._sample_rare(now_ns, full)
        state = self.state()
        if full or state != self.last_state:
            if self._push((KIND_STATE, 0, state, None, None, now_ns)):
                self.last_state = state
            else:
                missed = True
        if missed and full:
            self.refresh_requested = True  # finish the refresh once there is room

    def _sample_rare(self, now_ns: int, full: bool) -> bool:
        """Parameters and phases: few, and they change only on a command or a transition."""
        missed = False
        last_param = self.last_param
        for k, (_name, param) in enumerate(self.params):
            v = param.value
            if full or v != last_param[k] or type(v) is not type(last_param[k]):
                if self._push((KIND_PARAM, k, v, None, None, now_ns)):
                    last_param[k] = v
                else:
                    missed = True
        last_phase = self.last_phase
        for k, (_path, probe) in enumerate(self.phases):
            view = (probe.state, probe.step)
            if full or view != last_phase[k]:
                if self._push((KIND_PHASE, k, view, None, None, now_ns)):
                    last_phase[k] = view
                else:
                    missed = True
        return missed

    def statistics(self) -> dict[str, Any]:
        return {
            "queued": len(self.queue),
            "enqueued": self.enqueued,
            "dropped": self.dropped,
            "samples": self.samples,
            "errors": self.errors,
            "last_error": self.last_error,
            "capacity": self.capacity,
        }


def alarm_payload(view: tuple[Any, ...]) -> dict[str, Any]:
    """The JSON body of an alarm view tuple."""
    return {
        "active": view[0],
        "unacked": view[1],
        "severity": view[2],
        "kinds": [k for k, on in zip(_KINDS, view[3:8], strict=True) if on],
        "text": view[8],
    }

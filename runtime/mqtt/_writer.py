"""The scan-side hook of the out-of-process bridge: the process image into shared memory."""

from __future__ import annotations

import traceback
from collections import deque
from typing import TYPE_CHECKING, Any

import structlog

from hal import IecType
from runtime.mqtt._shm import ALARM_FIELDS, SharedFrame
from runtime.mqtt._tap import engine_alarms, engine_phases, follow_app

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine
    from runtime.core._task import Task

__all__ = ["STATES", "FrameWriter", "point_kinds"]

STATES = ("RUN", "STOP", "FAULT")
_STATE_CODE = {name: i for i, name in enumerate(STATES)}
_log = structlog.get_logger("vplc.mqtt")
_UNSENT = object()  # never identical to a value: the next sample sends the text again
_SIDE_CAPACITY = 10_000


def point_kinds(engine: ScanEngine) -> list[str]:
    """How each slot is read back: 'f' float64, 'i' int64, 'b' bool, 's' text by pipe."""
    kinds = []
    for p in engine.image.points:
        if p.type is IecType.STRING:
            kinds.append("s")
        elif p.type is IecType.BOOL:
            kinds.append("b")
        else:
            kinds.append("i" if p.type.is_integer else "f")
    return kinds


class FrameWriter:
    """Cycle hook: every ``sample_ns`` of app time, store every value in the shared frame.

    The scan pays a fixed, small cost per sample (one memoryview store per field, no
    pickling, no queue, no allocation beyond what reading the attributes costs) however
    busy the network is. Texts (STRING points, alarm TEXT, the fault reason), parameter
    values and phases (state, step) are compared by identity and, when they change, appended
    to ``side`` for the link thread to send through the pipe: they change rarely (a command,
    a transition) and do not fit a fixed slot.
    """

    def __init__(self, engine: ScanEngine, frame: SharedFrame, *, sample_ns: int) -> None:
        self.engine = engine
        self.frame = frame
        self.sample_ns = sample_ns
        points = list(engine.image.points)
        kinds = point_kinds(engine)
        self.floats = [(i, p) for i, p in enumerate(points) if kinds[i] == "f"]
        self.ints = [(i, p) for i, p in enumerate(points) if kinds[i] in "ib"]
        self.texts = [(i, p) for i, p in enumerate(points) if kinds[i] == "s"]
        self.points = list(enumerate(points))
        alarms = engine_alarms(engine)
        self.alarms = [(j, block) for j, (_path, block) in enumerate(alarms)]
        self.last_point_text: list[Any] = [_UNSENT] * len(points)
        self.last_alarm_text: list[Any] = [_UNSENT] * len(self.alarms)
        self.last_reason: Any = _UNSENT
        self.params = list(enumerate(engine.app.parameters.values()))
        phases = engine_phases(engine)
        self.phases = [(k, probe) for k, (_path, probe) in enumerate(phases)]
        # Paths and names by index (the child's layout), to follow an online change by name.
        self._app = engine.app
        self._named = (alarms, list(engine.app.parameters.items()), phases)
        self.last_param: list[Any] = [_UNSENT] * len(self.params)
        self.last_phase: list[Any] = [(_UNSENT, _UNSENT)] * len(self.phases)
        self.side: deque[tuple[str, int, Any]] = deque()
        self.next_sample_ns = 0
        self.samples = 0
        self.errors = 0
        self.last_error = ""
        self.side_dropped = 0

    def resend_texts(self) -> None:
        """Send every text again at the next sample (a new child knows none of them)."""
        self.last_point_text = [_UNSENT] * len(self.last_point_text)
        self.last_alarm_text = [_UNSENT] * len(self.last_alarm_text)
        self.last_reason = _UNSENT
        self.last_param = [_UNSENT] * len(self.last_param)
        self.last_phase = [(_UNSENT, _UNSENT)] * len(self.last_phase)

    def __call__(self, task: Task, now_ns: int) -> None:
        if now_ns < self.next_sample_ns:
            return
        self.next_sample_ns = now_ns + self.sample_ns
        self.write(now_ns)

    def write(self, now_ns: int) -> None:
        """Store one frame; on the scan thread, or on another once the scan has stopped."""
        try:
            self._write(now_ns)
        except Exception as exc:
            # Telemetry must never disturb the scan, nor fail unseen: the first error is
            # logged with its traceback, every one is counted.
            self.errors += 1
            self.last_error = repr(exc)
            if self.errors == 1:
                _log.error(
                    "telemetry_write_failed",
                    error=self.last_error,
                    traceback=traceback.format_exc(),
                    note="later failures are only counted (statistics: errors)",
                )
        finally:
            self.frame.end()  # never leave the seqlock odd: readers would wait forever

    def _text(self, kind: str, idx: int, value: Any) -> bool:
        if len(self.side) >= _SIDE_CAPACITY:
            self.side_dropped += 1
            return False  # the last-sent text is kept, so the change is found again
        self.side.append((kind, idx, value))
        return True

    def _write(self, now_ns: int) -> None:
        self.samples += 1
        engine = self.engine
        if engine.app is not self._app:
            self._follow(engine.app)
        frame = self.frame
        frame.begin(now_ns, _STATE_CODE.get(engine.state.value, 2))
        f64, i64, quality, forced = frame.f64, frame.i64, frame.quality, frame.forced
        for i, p in self.floats:
            f64[i] = p.value
        for i, p in self.ints:
            i64[i] = p.value
        for i, p in self.points:
            quality[i] = p.quality
            forced[i] = p.forced
        last = self.last_point_text
        for i, p in self.texts:
            v = p.value
            if v is not last[i] and self._text("point", i, v):
                last[i] = v
        alarms, last_text = frame.alarms, self.last_alarm_text
        for j, b in self.alarms:
            k = j * ALARM_FIELDS
            alarms[k] = b.ACTIVE
            alarms[k + 1] = b.UNACKED
            alarms[k + 2] = b.SEVERITY
            alarms[k + 3] = b.HH_ACTIVE
            alarms[k + 4] = b.H_ACTIVE
            alarms[k + 5] = b.L_ACTIVE
            alarms[k + 6] = b.LL_ACTIVE
            alarms[k + 7] = b.BAD_ACTIVE
            text = b.TEXT
            if text is not last_text[j] and self._text("alarm", j, text):
                last_text[j] = text
        reason = engine.fault_reason
        if reason is not self.last_reason and self._text("reason", 0, reason):
            self.last_reason = reason
        last_param = self.last_param
        for k, param in self.params:
            v = param.value
            if v is not last_param[k] and self._text("param", k, v):
                last_param[k] = v
        last_phase = self.last_phase
        for k, probe in self.phases:
            state, step = probe.state, probe.step
            was = last_phase[k]
            changed = state is not was[0] or step is not was[1]
            if changed and self._text("phase", k, (state, step)):
                last_phase[k] = (state, step)

    def _follow(self, app: Any) -> None:
        """After an online change: read the new version's instances (same slots, by name)."""
        self._app = app
        alarms, params, phases = self._named = follow_app(app, *self._named)
        self.alarms = [(j, block) for j, (_path, block) in enumerate(alarms)]
        self.params = [(k, param) for k, (_name, param) in enumerate(params)]
        self.phases = [(k, probe) for k, (_path, probe) in enumerate(phases)]

    def statistics(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "errors": self.errors,
            "last_error": self.last_error,
            "side_queued": len(self.side),
            "side_dropped": self.side_dropped,
        }

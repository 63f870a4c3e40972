"""The scan-side hook of the process front-ends: the process image into shared memory."""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from hal import IecType
from runtime.front._probes import engine_alarms, engine_phases, follow_app
from runtime.front._shm import ALARM_FIELDS, SharedFrame

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine
    from runtime.core._task import Task

__all__ = ["STATES", "FrameWriter", "Layout", "PointInfo", "Side", "Text", "point_kinds"]

STATES = ("RUN", "STOP", "FAULT")
_STATE_CODE = {name: i for i, name in enumerate(STATES)}
_log = structlog.get_logger("vplc.front")
_UNSENT = object()  # never identical to a value: the next sample sends the text again
_SIDE_CAPACITY = 10_000


Text = tuple[str, int, Any, int]  # (what, index, value, the scan's change_seq at the sample)


class Side:
    """One reader's queue of texts (a front-end's link thread drains it into its pipe).

    Each text carries the engine's ``change_seq`` of the sample that read it: a text sampled
    before a command ran has a smaller one than the command, whenever the pipe delivers it.
    Bounded: a reader that stops draining (its child is dead or restarting) loses texts, not
    memory; ``overflowed`` then tells its link thread to ask for every text again."""

    __slots__ = ("dropped", "overflowed", "queue")

    def __init__(self) -> None:
        self.queue: deque[Text] = deque()
        self.overflowed = False
        self.dropped = 0


@dataclass(frozen=True)
class PointInfo:
    """A point as a front-end child describes it (OPC UA address space, Sparkplug metrics)."""

    name: str
    type: IecType
    unit: str
    range: tuple[float, float] | None
    description: str


@dataclass(frozen=True)
class Layout:
    """What each slot of the frame holds, by index, bound to the running version's instances
    (the indexes are fixed when the frame is made; an online change rebinds them by name)."""

    points: list[Any]
    alarms: list[tuple[str, Any]]
    params: list[tuple[str, Any]]
    phases: list[tuple[str, Any]]

    @property
    def kinds(self) -> list[str]:
        return point_kinds(self.points)

    def point_infos(self) -> list[PointInfo]:
        return [
            PointInfo(p.name, p.type, p.spec.unit, p.spec.range, p.spec.description)
            for p in self.points
        ]


def point_kinds(points: Sequence[Any]) -> list[str]:
    """How each slot is read back: 'f' float64, 'i' int64, 'b' bool, 's' text by pipe."""
    kinds = []
    for p in points:
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
    busy the network is, and however many front-ends read the frame. Texts (STRING points,
    alarm TEXT, the fault reason), parameter values and phases (state, step) are compared by
    identity and, when they change, appended to every reader's ``Side`` for its link thread
    to send through its pipe: they change rarely (a command, a transition) and do not fit a
    fixed slot. Each is stamped with the engine's ``change_seq`` (one integer read per
    sample), so a child can tell a text read before a command from one read after it.
    """

    def __init__(self, engine: ScanEngine, frame: SharedFrame, *, sample_ns: int) -> None:
        self.engine = engine
        self.frame = frame
        self.sample_ns = sample_ns
        points = list(engine.image.points)
        kinds = point_kinds(points)
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
        # Copy-on-write: readers come and go from other threads, the scan only iterates.
        self.sides: tuple[Side, ...] = ()
        self.next_sample_ns = 0
        self.seq = 0  # the engine's change_seq at the sample being written
        self.samples = 0
        self.errors = 0
        self.last_error = ""

    def layout(self) -> Layout:
        alarms, params, phases = self._named
        return Layout([p for _, p in self.points], list(alarms), list(params), list(phases))

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

    def _text(self, kind: str, idx: int, value: Any) -> None:
        item = (kind, idx, value, self.seq)
        for side in self.sides:
            if len(side.queue) >= _SIDE_CAPACITY:
                side.dropped += 1
                side.overflowed = True  # its reader asks for every text again once it drains
            else:
                side.queue.append(item)

    def _write(self, now_ns: int) -> None:
        self.samples += 1
        engine = self.engine
        # Commands run between cycles, on this same thread: none can run inside this sample.
        self.seq = engine.change_seq
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
            if v is not last[i]:
                self._text("point", i, v)
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
            if text is not last_text[j]:
                self._text("alarm", j, text)
                last_text[j] = text
        reason = engine.fault_reason
        if reason is not self.last_reason:
            self._text("reason", 0, reason)
            self.last_reason = reason
        last_param = self.last_param
        for k, param in self.params:
            v = param.value
            if v is not last_param[k]:
                self._text("param", k, v)
                last_param[k] = v
        last_phase = self.last_phase
        for k, probe in self.phases:
            state, step = probe.state, probe.step
            was = last_phase[k]
            changed = state is not was[0] or step is not was[1]
            if changed:
                self._text("phase", k, (state, step))
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
            "readers": len(self.sides),
        }

"""The web process's live picture: frame → values, changes → every browser, and the trend ring."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from runtime.front import ALARM_FIELDS, STATES, ChildLink, Frame, SharedFrame
from runtime.web._init import WebInit
from runtime.web._trend import TrendRing

__all__ = ["Hub"]

_QUEUE = 16  # messages a slow browser may lag behind before it is resynchronised
_STALE_S = 3.0  # no new frame for this long while RUN: the scan is stopped or hung


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN: a gap, shown as "—"


class Hub:
    """Samples the frame every ``sample_ms``; sends each change once to every subscriber.

    A message is encoded once and shared by every browser (``asyncio.Queue`` each, bounded):
    one that lags behind ``_QUEUE`` messages gets its queue cleared and a full snapshot
    instead, so a slow tablet never makes the process hold an unbounded backlog.
    """

    def __init__(self, frame: SharedFrame, link: ChildLink, init: WebInit) -> None:
        self.frame, self.link, self.init = frame, link, init
        self.kinds = init.kinds
        n = len(init.points)
        self.values: list[Any] = [None] * n
        self.quality = [0] * n
        self.forced = [0] * n
        self.alarms: list[list[Any]] = [[0] * ALARM_FIELDS + [""] for _ in init.alarm_paths]
        self.params: list[Any] = list(init.param_values)
        self.phases: list[list[Any]] = [[s, st, 0.0, 0.0] for s, st in init.phase_views]
        self.state = "STOP"
        self.reason = ""
        self.now_s = 0.0
        self.seq = -1
        self.last_frame_wall = time.monotonic()
        self.subscribers: set[asyncio.Queue[str]] = set()
        self.trend = TrendRing(
            n,
            span_s=init.config.trend_s,
            period_s=init.config.trend_period_s,
            max_mb=init.config.trend_max_mb,
        )
        self.samples = 0
        self.messages = 0
        self.resyncs = 0

    # ------------------------------------------------------------------ the picture
    def runtime_status(self) -> dict[str, Any]:
        """RUN/STOP/FAULT as the scan last wrote it, or why no value is current."""
        if self.link.done.is_set():
            return {"state": "UNREACHABLE", "reason": "the scan process is gone"}
        age = time.monotonic() - self.last_frame_wall
        if self.seq < 0:
            return {"state": "STARTING", "reason": "no values from the scan yet"}
        if age > _STALE_S and self.state == "RUN":
            return {"state": "STALLED", "reason": f"no new values from the scan for {age:.0f} s"}
        return {"state": self.state, "reason": self.reason}

    def snapshot(self) -> dict[str, Any]:
        return {
            "type": "full",
            "t": self.now_s,
            "status": self.runtime_status(),
            "v": self.values,
            "q": self.quality,
            "f": self.forced,
            "alarms": self.alarms,
            "params": self.params,
            "phases": self.phases,
            "wall_ms": time.time() * 1000,
        }

    def _decode(self, frame: Frame) -> list[Any]:
        texts = self.link.point_texts
        out: list[Any] = []
        for i, kind in enumerate(self.kinds):
            if kind == "f":
                out.append(_num(frame.floats[i]))
            elif kind == "i":
                out.append(frame.ints[i])
            elif kind == "b":
                out.append(bool(frame.ints[i]))
            else:
                out.append(texts.get(i, ""))
        return out

    def frame_is_new(self) -> bool:
        """The scan wrote a frame (or is writing one) since the last sample."""
        return self.frame.peek_seq() != self.seq

    def sample(self) -> dict[str, Any] | None:
        """Read the frame; the changes as a delta message (None when nothing changed)."""
        self.samples += 1
        status_before = self.runtime_status()
        frame = self.frame.read()
        delta: dict[str, Any] = {}
        if frame is not None and frame.seq != self.seq:
            self.seq = frame.seq
            self.last_frame_wall = time.monotonic()
            self.now_s = frame.now_ns / 1e9
            self.state = STATES[frame.state] if frame.state < len(STATES) else "FAULT"
            delta = self._changes(frame)
            self.trend.record(self.now_s, self.values)
        self.reason = self.link.reason or ""
        self._side_changes(delta)
        status = self.runtime_status()
        if status != status_before or (delta and "status" not in delta):
            delta["status"] = status
        if not delta:
            return None
        delta["type"] = "delta"
        delta["t"] = self.now_s
        delta["wall_ms"] = time.time() * 1000
        return delta

    def _changes(self, frame: Frame) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        values = self._decode(frame)
        changed = {i: v for i, v in enumerate(values) if v != self.values[i]}
        if changed:
            delta["v"] = changed
        self.values = values
        q = {i: v for i, v in enumerate(frame.quality) if v != self.quality[i]}
        if q:
            delta["q"] = q
        self.quality = frame.quality
        f = {i: v for i, v in enumerate(frame.forced) if v != self.forced[i]}
        if f:
            delta["f"] = f
        self.forced = frame.forced
        alarms: dict[int, list[Any]] = {}
        texts = self.link.alarm_texts
        for j, row in enumerate(self.alarms):
            k = j * ALARM_FIELDS
            new = [*frame.alarms[k : k + ALARM_FIELDS], texts.get(j, "")]
            if new != row:
                self.alarms[j] = new
                alarms[j] = new
        if alarms:
            delta["alarms"] = alarms
        return delta

    def _side_changes(self, delta: dict[str, Any]) -> None:
        params = {k: v for k, v in enumerate(self.link.param_values) if v != self.params[k]}
        if params:
            for k, v in params.items():
                self.params[k] = v
            delta["params"] = params
        phases: dict[int, list[Any]] = {}
        for k, (state, step) in enumerate(self.link.phase_views):
            row = self.phases[k]
            if row[0] != state or row[1] != step:
                since_state = self.now_s if row[0] != state else row[2]
                self.phases[k] = phases[k] = [state, step, since_state, self.now_s]
        if phases:
            delta["phases"] = phases

    # ------------------------------------------------------------------ the browsers
    def subscribe(self) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(_QUEUE)
        queue.put_nowait(json.dumps(self.snapshot(), separators=(",", ":")))
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self.subscribers.discard(queue)

    def publish(self, message: dict[str, Any]) -> None:
        text = json.dumps(message, separators=(",", ":"))
        self.messages += 1
        for queue in self.subscribers:
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                self.resyncs += 1
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(json.dumps(self.snapshot(), separators=(",", ":")))

    def statistics(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "messages": self.messages,
            "resyncs": self.resyncs,
            "browsers": len(self.subscribers),
            "frame_retries": self.frame.retries,
            "trend": self.trend.statistics(),
        }

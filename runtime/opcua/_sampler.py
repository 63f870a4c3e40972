"""Copies the shared frame (and the pipe's texts) into the address space at ``sample_ms``."""

from __future__ import annotations

import traceback
from datetime import UTC, datetime
from typing import Any

import structlog
from asyncua import Server, ua

from runtime.front import ALARM_FIELDS, STATES, ChildLink, SharedFrame
from runtime.opcua._init import OpcuaInit
from runtime.opcua._programs import ProgramValues
from runtime.opcua._space import (
    ALARM_VARS,
    LEAF_TYPES,
    TASK_FIELDS,
    UA_SEVERITY,
    AppSpace,
    variant_type,
)

__all__ = ["Sampler", "status_of"]

_GOOD, _UNCERTAIN, _BAD = 2, 1, 0  # hal.Quality values as the frame stores them
_UNSET = object()
_log = structlog.get_logger("vplc.opcua")


def status_of(quality: int, forced: bool) -> ua.StatusCode:
    """HAL quality → StatusCode; a forced value is Good_LocalOverride (it is not the field's)."""
    if quality == _GOOD:
        code = ua.StatusCodes.GoodLocalOverride if forced else ua.StatusCodes.Good
    elif quality == _UNCERTAIN:
        code = ua.StatusCodes.Uncertain
    else:
        code = ua.StatusCodes.Bad
    return ua.StatusCode(ua.UInt32(code))


def _same(a: Any, b: Any) -> bool:
    return bool(a == b or (a != a and b != b))  # NaN equals NaN here: no change to send


def _as_leaf(value: Any, vtype: ua.VariantType) -> Any:
    """A leaf's value as its node's type; None when it does not fit (shown as Bad)."""
    if value is None:
        return None
    if vtype is ua.VariantType.String:
        return str(value)
    if vtype is ua.VariantType.Boolean:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if vtype is ua.VariantType.Int64:
        return value if isinstance(value, int) else None
    return float(value)


class Sampler:
    """Writes only what changed since the last sample: subscriptions see one notification per
    change, with the cycle's time as SourceTimestamp (app time + the wall-clock offset)."""

    def __init__(
        self,
        server: Server,
        space: AppSpace,
        frame: SharedFrame,
        link: ChildLink,
        init: OpcuaInit,
        programs: ProgramValues | None = None,
    ) -> None:
        self.server, self.space, self.frame, self.link = server, space, frame, link
        self.kinds = init.kinds
        self.vtypes = [variant_type(p.type) for p in init.points]
        self.param_vtypes = [variant_type(spec.type) for spec in init.params]
        self.last_point: list[Any] = [_UNSET] * len(init.points)
        self.last_param: list[Any] = [_UNSET] * len(init.params)
        self.last_phase: list[Any] = [_UNSET] * len(init.phase_paths)
        self.last_state: Any = _UNSET
        self.last_alarm: list[Any] = [_UNSET] * len(init.alarm_paths)
        self.programs = programs
        self.leaf_vtypes = [LEAF_TYPES[leaf.kind] for leaf in init.leaves]
        self.last_leaf: list[Any] = [_UNSET] * len(init.leaves)
        self.programs_seen = 0
        self.stats_seen = -1
        self.frame_seen = -1
        self.samples = 0
        self.writes = 0
        self.errors = 0
        self.last_error = ""

    async def sample_safely(self) -> None:
        """``sample``, never raising: a bug here must not take the server down with it.

        The first failure is logged with its traceback, later ones only counted (as the
        MQTT bridge's FrameWriter does): a stuck address space is not silent.
        """
        try:
            await self.sample()
        except Exception as exc:
            self.errors += 1
            self.last_error = repr(exc)
            if self.errors == 1:
                _log.error(
                    "opcua_sample_failed",
                    error=self.last_error,
                    traceback=traceback.format_exc(),
                    note="later failures are only counted (statistics: sampler.errors)",
                )

    async def sample(self) -> None:
        self.samples += 1
        now = datetime.now(UTC)
        frame = self.frame.read()
        if frame is not None and frame.seq != self.frame_seen:
            self.frame_seen = frame.seq
            source = datetime.fromtimestamp((self.link.wall0_ns + frame.now_ns) / 1e9, UTC)
            await self._points(frame, source, now)
            await self._alarms(frame.alarms, source, now)
            state = STATES[frame.state] if frame.state < len(STATES) else "FAULT"
            if state != self.last_state:
                self.last_state = state
                await self._write(self.space.state, state, ua.VariantType.String, source, now)
        await self._params(now)
        await self._phases(now)
        if self.programs is not None and self.programs.seq != self.programs_seen:
            self.programs_seen = self.programs.seq
            await self._leaves(self.programs.values, now)
        if self.link.stats_seq != self.stats_seen:
            self.stats_seen = self.link.stats_seq
            await self._tasks(now)

    async def _write(
        self,
        node: Any,
        value: Any,
        vtype: ua.VariantType,
        source: datetime,
        now: datetime,
        status: ua.StatusCode | None = None,
    ) -> None:
        dv = ua.DataValue(
            Value=ua.Variant(value, vtype),
            StatusCode=status or ua.StatusCode(),
            SourceTimestamp=source,  # type: ignore[arg-type]  # datetime is what it holds
            ServerTimestamp=now,  # type: ignore[arg-type]
        )
        await self.server.write_attribute_value(node.nodeid, dv)
        self.writes += 1

    async def _points(self, frame: Any, source: datetime, now: datetime) -> None:
        texts = self.link.point_texts
        for i, node in enumerate(self.space.points):
            kind = self.kinds[i]
            if kind == "f":
                value: Any = frame.floats[i]
            elif kind == "i":
                value = frame.ints[i]
            elif kind == "b":
                value = bool(frame.ints[i])
            else:
                value = texts.get(i, "")
            quality, forced = frame.quality[i], bool(frame.forced[i])
            last = self.last_point[i]
            if last is not _UNSET and _same(last[0], value) and last[1:] == (quality, forced):
                continue
            self.last_point[i] = (value, quality, forced)
            status = status_of(quality, forced)
            await self._write(node, value, self.vtypes[i], source, now, status)

    async def _alarms(self, fields: list[int], source: datetime, now: datetime) -> None:
        texts = self.link.alarm_texts
        for j, nodes in enumerate(self.space.alarms):
            view = (*fields[j * ALARM_FIELDS : (j + 1) * ALARM_FIELDS], texts.get(j, ""))
            last = self.last_alarm[j]
            if view == last:
                continue
            self.last_alarm[j] = view
            for name, (k, vtype, _) in ALARM_VARS.items():
                at = -1 if k is None else k
                if last is not _UNSET and last[at] == view[at]:
                    continue
                if k is None:
                    value: Any = view[-1]
                elif k == 1:
                    value = not view[1]  # the frame holds UNACKED
                elif vtype is ua.VariantType.UInt16:
                    value = UA_SEVERITY.get(fields[j * ALARM_FIELDS + k], 1000)
                else:
                    value = bool(view[k])
                await self._write(nodes[name], value, vtype, source, now)
            await self._condition(j, last, view, source)

    async def _condition(self, j: int, last: Any, view: tuple[Any, ...], when: datetime) -> None:
        """The AlarmConditionType event: on a change of active, acked or severity (at start
        only for a condition that is retained: active or unacknowledged)."""
        active, unacked, severity = bool(view[0]), bool(view[1]), int(view[2] or 0)
        if last is _UNSET:
            if not (active or unacked):
                return
        elif last[:3] == view[:3]:
            return
        await self.space.conditions.update(
            j, active=active, unacked=unacked, severity=UA_SEVERITY.get(severity, 1000),
            text=str(view[-1]), when=when,
        )  # fmt: skip

    async def _leaves(self, values: list[Any], now: datetime) -> None:
        """The instance tree's values read between two cycles (only what changed)."""
        bad = ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNoData))
        for k, value in enumerate(values[: len(self.space.leaves)]):
            last = self.last_leaf[k]
            if last is not _UNSET and _same(last, value) and type(last) is type(value):
                continue
            self.last_leaf[k] = value
            vtype = self.leaf_vtypes[k]
            shown = _as_leaf(value, vtype)
            node = self.space.leaves[k]
            if shown is None:  # gone in this version, or not of the type it started with
                dv = ua.DataValue(StatusCode=bad, ServerTimestamp=now)  # type: ignore[arg-type]
                await self.server.write_attribute_value(node.nodeid, dv)
                self.writes += 1
                continue
            await self._write(node, shown, vtype, now, now)

    async def show_params(self) -> None:
        """The link's parameter values in the address space now, not at the next sample:
        ``ChildLink`` has an accepted write's value before the write returns."""
        await self._params(datetime.now(UTC))

    async def _params(self, now: datetime) -> None:
        for k, value in enumerate(self.link.param_values):
            last = self.last_param[k]
            if last is not _UNSET and _same(last, value) and type(last) is type(value):
                continue
            self.last_param[k] = value
            await self._write(self.space.params[k], value, self.param_vtypes[k], now, now)

    async def _phases(self, now: datetime) -> None:
        for k, view in enumerate(self.link.phase_views):
            if view == self.last_phase[k]:
                continue
            self.last_phase[k] = view
            state, step = view
            state_node, step_node = self.space.phases[k]
            await self._write(state_node, str(state), ua.VariantType.String, now, now)
            text = "" if step is None else str(step)
            await self._write(step_node, text, ua.VariantType.String, now, now)

    async def _tasks(self, now: datetime) -> None:
        tasks = self.link.engine_stats.get("tasks", {})
        for task, nodes in self.space.tasks.items():
            stats = tasks.get(task)
            if not isinstance(stats, dict):
                continue
            for name, (keys, vtype) in TASK_FIELDS.items():
                value: Any = stats
                for key in keys:
                    value = value.get(key) if isinstance(value, dict) else None
                if value is None:
                    continue
                value = float(value) if vtype is ua.VariantType.Double else int(value)
                await self._write(nodes[name], value, vtype, now, now)

    def statistics(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "writes": self.writes,
            "errors": self.errors,
            "last_error": self.last_error,
            "frame_seq": self.frame_seen,
            "frame_read_retries": self.frame.retries,
        }

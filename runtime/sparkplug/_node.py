"""The Sparkplug B edge node: births, DDATA by exception, deaths, rebirth, STATE, commands."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from hal import Quality
from hal.mqtt import Inbound, MqttError, MqttSession, SessionHandler, Will
from runtime.front import ALARM_FIELDS, STATES, ChildLink, Frame, SharedFrame
from runtime.sparkplug._commands import DeviceCommands
from runtime.sparkplug._init import MetricDef, SparkplugInit
from runtime.sparkplug._payload import (
    QUALITY_CODE,
    DataType,
    Payload,
    PayloadError,
    decode,
    set_property,
    set_value,
)

__all__ = ["BdSeq", "EdgeNode", "Topics"]

_log = structlog.get_logger("vplc.sparkplug")
_UNSET = object()
_MAX_PENDING_COMMANDS = 64  # DCMDs waiting for the command path; more are refused as a flood
# A birth republishes every metric: rebirth requests closer together than this are folded
# into one birth when the interval has passed (a host's rebirth storm costs one birth/s).
_REBIRTH_MIN_S = 1.0
_QUALITY_BY_CODE = {q.value: q for q in Quality}


class Topics:
    """The Sparkplug 3.0 topic namespace of one edge node and its one device (the app)."""

    def __init__(self, group: str, node: str, device: str, host: str | None) -> None:
        p = f"spBv1.0/{group}"
        self.nbirth, self.ndeath, self.ncmd = (
            f"{p}/{t}/{node}" for t in ("NBIRTH", "NDEATH", "NCMD")
        )
        self.dbirth, self.ddeath, self.ddata, self.dcmd = (
            f"{p}/{t}/{node}/{device}" for t in ("DBIRTH", "DDEATH", "DDATA", "DCMD")
        )
        self.state = f"spBv1.0/STATE/{host}" if host is not None else None


class BdSeq:
    """The birth/death sequence number (0..255): one per MQTT CONNECT, kept on disk so that a
    restarted node does not reuse the number of its last session's death certificate."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            previous = int(path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            previous = -1
        self.value = (previous + 1) % 256
        self._save()

    def advance(self) -> None:
        self.value = (self.value + 1) % 256
        self._save()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(f"{self.value}\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # still correct within this process; say that it is not kept
            _log.warning("sparkplug_bdseq_not_saved", path=str(self.path), error=exc.strerror)


class EdgeNode(SessionHandler):
    """One MQTT session's Sparkplug behaviour (hal.mqtt.MqttSession calls it).

    Per connection: wait for the primary host's STATE online (if one is configured), then
    NBIRTH (seq 0, bdSeq of this connection's will) and DBIRTH (every metric with name,
    alias, datatype, value and properties); then DDATA with the changed metrics by alias,
    seq + 1 per message modulo 256. NCMD ``Node Control/Rebirth`` → births again; DCMD →
    commands (DeviceCommands). A clean stop sends DDEATH and NDEATH; a lost connection leaves
    the broker to publish the will, NDEATH with the same bdSeq.
    """

    def __init__(
        self,
        init: SparkplugInit,
        link: ChildLink,
        frame: SharedFrame,
        commands: DeviceCommands,
        metrics: list[MetricDef],
    ) -> None:
        sp = init.sparkplug
        self.init, self.link, self.frame, self.commands = init, link, frame, commands
        self.metrics = metrics
        self.topics = Topics(sp.group_id, sp.edge_node_id, init.device_id, sp.primary_host_id)
        self.bdseq = BdSeq(init.bdseq_file)
        self.seq = 0
        self.born = False
        self.host_online = sp.primary_host_id is None
        self.state_ts = -1
        self.last: list[Any] = [_UNSET] * len(metrics)
        self.last_q: list[int | None] = [None] * len(metrics)
        self.deadband = [init.deadbands[m.index] if m.kind == "point" else 0.0 for m in metrics]
        self.session: MqttSession | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sparkplug-cmd")  # in order
        self._pending = 0
        self._refusals = 0
        self._born_at = -_REBIRTH_MIN_S
        self._rebirth_due = False
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "births",
                "rebirths",
                "ddata",
                "metrics",
                "payloads_refused",
                "state_refused",
                "commands_flooded",
            ),
            0,
        )

    # ------------------------------------------------------------------ wire helpers
    def will(self) -> Will:
        """This connection's death certificate (NDEATH with its bdSeq), registered at CONNECT."""
        return Will(self.topics.ndeath, self._ndeath(), qos=1, retain=False)

    def subscriptions(self) -> list[tuple[str, int]]:
        subs = [(self.topics.ncmd, 1), (self.topics.dcmd, 1)]
        if self.topics.state is not None:
            subs.append((self.topics.state, 1))
        return subs

    def _ndeath(self) -> bytes:
        payload = Payload(timestamp=_now_ms())
        m = payload.metrics.add(name="bdSeq", datatype=DataType.Int64)
        set_value(m, DataType.Int64, self.bdseq.value)
        return payload.SerializeToString()

    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) % 256
        return self.seq

    # ------------------------------------------------------------------ SessionHandler
    async def on_connect(self, session: MqttSession) -> None:
        self.session = session
        self.born = False
        self._rebirth_due = False
        self.host_online = self.topics.state is None  # a new connection waits for STATE again
        self.link.send(("conn", True))
        if self.host_online:
            await self._births(session)
        else:
            _log.info("sparkplug_waiting_for_host", topic=self.topics.state)

    async def serve(self, session: MqttSession) -> None:
        cfg = self.init.config
        period = max(cfg.publish_ms, cfg.sample_ms) / 1000
        while True:
            await asyncio.sleep(period)
            if self._rebirth_due and time.monotonic() - self._born_at >= _REBIRTH_MIN_S:
                await self._births(session)
            elif self.born:
                self.publish_changes(session)

    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        if msg.topic == self.topics.state:
            await self._state(session, msg)
        elif msg.topic == self.topics.ncmd:
            await self._ncmd(session, msg)
        elif msg.topic == self.topics.dcmd:
            self._dcmd(msg)

    async def on_stop(self, session: MqttSession) -> None:
        if not self.born:
            return
        self.publish_changes(session)  # the last values (the safe outputs after a stop)
        ddeath = Payload(timestamp=_now_ms(), seq=self._next_seq())
        session.publish_nowait(self.topics.ddeath, ddeath.SerializeToString())
        await session.publish(self.topics.ndeath, self._ndeath(), qos=1)
        self.born = False

    def on_down(self, error: MqttError, *, was_up: bool) -> None:
        self.born = False
        if was_up:
            self.link.send(("conn", False))
        # The next CONNECT registers a new death certificate: a new bdSeq.
        self.bdseq.advance()
        if self.session is not None:
            self.session.will = self.will()

    # ------------------------------------------------------------------ births and data
    async def _births(self, session: MqttSession) -> None:
        """NBIRTH (seq 0) then DBIRTH with every metric; after them, data by exception."""
        self.seq = 0
        now = _now_ms()
        nbirth = Payload(timestamp=now, seq=0)
        m = nbirth.metrics.add(name="bdSeq", datatype=DataType.Int64, timestamp=now)
        set_value(m, DataType.Int64, self.bdseq.value)
        m = nbirth.metrics.add(
            name="Node Control/Rebirth", datatype=DataType.Boolean, timestamp=now
        )
        set_value(m, DataType.Boolean, False)
        for name, value in (("App", self.init.app_name), ("App Version", self.init.app_version)):
            m = nbirth.metrics.add(
                name=f"Node Info/{name}", datatype=DataType.String, timestamp=now
            )
            set_value(m, DataType.String, value)
        frame = self.frame.read()
        dbirth = Payload(timestamp=now, seq=self._next_seq())
        stamp = self._stamp(frame) if frame is not None else now
        for i, mdef in enumerate(self.metrics):
            value, quality = self._current(i, mdef, frame)
            metric = dbirth.metrics.add(
                name=mdef.name, alias=mdef.alias, datatype=mdef.datatype, timestamp=stamp
            )
            set_value(metric, mdef.datatype, value)
            self._properties(metric, mdef, quality)
            self.last[i], self.last_q[i] = value, quality
        session.publish_nowait(self.topics.nbirth, nbirth.SerializeToString())
        session.publish_nowait(self.topics.dbirth, dbirth.SerializeToString())
        self.born = True
        self._rebirth_due = False
        self._born_at = time.monotonic()
        self.stats["births"] += 1
        self.stats["metrics"] += len(self.metrics)
        _log.info(
            "sparkplug_born",
            node=self.topics.nbirth,
            bdseq=self.bdseq.value,
            metrics=len(self.metrics),
        )

    def _properties(self, metric: Any, mdef: MetricDef, quality: int | None) -> None:
        props = metric.properties
        if mdef.unit:
            set_property(props, "engUnit", DataType.String, mdef.unit)
        if mdef.range is not None:
            set_property(props, "engLow", DataType.Double, mdef.range[0])
            set_property(props, "engHigh", DataType.Double, mdef.range[1])
        if mdef.description:
            set_property(props, "Documentation", DataType.String, mdef.description)
        set_property(props, "readOnly", DataType.Boolean, not mdef.writable)
        if quality is not None:
            set_property(props, "Quality", DataType.Int32, quality)

    def publish_changes(self, session: MqttSession) -> int:
        """One DDATA with every metric whose value (beyond its deadband) or quality changed."""
        frame = self.frame.read()
        if frame is None:
            return 0
        stamp = self._stamp(frame)
        ddata = Payload(timestamp=_now_ms())
        last, last_q, band = self.last, self.last_q, self.deadband
        for i, mdef in enumerate(self.metrics):
            value, quality = self._current(i, mdef, frame)
            q_changed = quality != last_q[i]
            if not q_changed and not _changed(last[i], value, band[i]):
                continue
            # The datatype too (optional in DATA messages): a few bytes, and a consumer that
            # missed the birth can still read the value (Tahu's decoder needs it).
            metric = ddata.metrics.add(alias=mdef.alias, datatype=mdef.datatype, timestamp=stamp)
            set_value(metric, mdef.datatype, value)
            if q_changed and quality is not None:
                set_property(metric.properties, "Quality", DataType.Int32, quality)
            last[i], last_q[i] = value, quality
        n = len(ddata.metrics)
        if n:
            ddata.seq = self._next_seq()
            session.publish_nowait(self.topics.ddata, ddata.SerializeToString())
            self.stats["ddata"] += 1
            self.stats["metrics"] += n
        return n

    def _current(self, i: int, mdef: MetricDef, frame: Frame | None) -> tuple[Any, int | None]:
        """A metric's value now and, for points, its Sparkplug quality code."""
        kind = mdef.kind
        if kind == "point":
            k = mdef.index
            if frame is None:
                return None, QUALITY_CODE[Quality.BAD]
            slot = self.init.kinds[k]
            if slot == "f":
                value: Any = frame.floats[k]
            elif slot == "i":
                value = frame.ints[k]
            elif slot == "b":
                value = bool(frame.ints[k])
            else:
                value = self.link.point_texts.get(k, "")
            quality = _QUALITY_BY_CODE.get(frame.quality[k], Quality.BAD)
            return value, QUALITY_CODE[quality]
        if kind == "param":
            return self.link.param_values[mdef.index], None
        if kind == "state":
            code = frame.state if frame is not None else 2
            return STATES[code] if code < len(STATES) else "FAULT", None
        if kind == "alarm":
            return self._alarm(mdef, frame), None
        if kind == "phase":
            return self._phase(mdef), None
        return False, None  # Device Control/*: momentary, always reads false

    def _alarm(self, mdef: MetricDef, frame: Frame | None) -> Any:
        """An ALARM block's part: the frame's slots (ACTIVE, UNACKED, SEVERITY, as every
        front-end reads them), the text from the pipe; Acknowledge is momentary (false)."""
        part = mdef.part
        if part == "Text":
            return self.link.alarm_texts.get(mdef.index, "")
        if part == "Acknowledge":
            return False
        if frame is None:
            return None
        k = mdef.index * ALARM_FIELDS
        if part == "Active":
            return bool(frame.alarms[k])
        if part == "Acked":
            return not frame.alarms[k + 1]
        return frame.alarms[k + 2]  # Severity

    def _phase(self, mdef: MetricDef) -> str:
        """A PHASE block's state or step from the pipe (as OPC UA shows them); Command is
        momentary and reads ''."""
        if mdef.part == "Command":
            return ""
        state, step = self.link.phase_views[mdef.index]
        if mdef.part == "State":
            return str(state)
        return "" if step is None else str(step)

    def _stamp(self, frame: Frame) -> int:
        """The frame's app time on the wall clock, in ms (the metrics' acquisition time)."""
        return (self.link.wall0_ns + frame.now_ns) // 1_000_000

    # ------------------------------------------------------------------ inbound
    async def _state(self, session: MqttSession, msg: Inbound) -> None:
        """spBv1.0/STATE/<host>: ``{"online": bool, "timestamp": ms}`` (Sparkplug 3.0)."""
        try:
            body = json.loads(msg.payload)
            online, ts = body["online"], body["timestamp"]
            if not isinstance(online, bool) or not isinstance(ts, int) or isinstance(ts, bool):
                raise ValueError("online must be a boolean and timestamp an integer")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            self._refused(msg.topic, f"malformed STATE: {exc}", "state_refused")
            return
        if ts < self.state_ts:
            self._refused(
                msg.topic,
                f"out of sequence: STATE timestamp {ts} is older than {self.state_ts}",
                "state_refused",
            )
            return
        self.state_ts = ts
        self.host_online = online
        _log.info("sparkplug_host_state", topic=msg.topic, online=online, timestamp=ts)
        if online and not self.born:
            await self._births(session)
        elif not online and self.born:
            # Sparkplug 3.0: the primary host went away: NDEATH, disconnect, and connect
            # again (then wait for it to come back before any birth).
            self.born = False
            await session.publish(self.topics.ndeath, self._ndeath(), qos=1)
            raise MqttError("host_offline", f"primary host {msg.topic} is offline: NDEATH sent")

    async def _ncmd(self, session: MqttSession, msg: Inbound) -> None:
        payload = self._decode(msg)
        if payload is None:
            return
        for metric in payload.metrics:
            if metric.name == "Node Control/Rebirth":
                if metric.WhichOneof("value") != "boolean_value":
                    self._refused(msg.topic, "Node Control/Rebirth needs a boolean", None)
                elif metric.boolean_value and self.host_online:
                    _log.info("sparkplug_rebirth", topic=msg.topic)
                    self.stats["rebirths"] += 1
                    if time.monotonic() - self._born_at >= _REBIRTH_MIN_S:
                        await self._births(session)
                    else:
                        self._rebirth_due = True  # the serve loop births once it is time
            else:
                self._refused(msg.topic, f"unknown node metric {metric.name!r}", None)

    def _dcmd(self, msg: Inbound) -> None:
        payload = self._decode(msg)
        if payload is None:
            return
        if self._pending >= _MAX_PENDING_COMMANDS:
            self.stats["commands_flooded"] += 1
            self.commands.refuse_early("flood", "too many commands waiting", msg.topic)
            return
        self._pending += 1
        loop = asyncio.get_running_loop()
        run = partial(
            self.commands.run, payload, topic=msg.topic, raw=msg.payload, retain=msg.retain
        )
        fut = loop.run_in_executor(self._pool, run)
        fut.add_done_callback(self._command_done)

    def _command_done(self, fut: asyncio.Future[list[Any]]) -> None:
        self._pending -= 1
        with contextlib.suppress(asyncio.CancelledError):
            if fut.exception() is not None:
                _log.error("sparkplug_command_error", error=repr(fut.exception()))

    def _decode(self, msg: Inbound) -> Any:
        if not msg.payload:  # how a retained copy is cleared from the broker: not a command
            _log.info("sparkplug_empty_message_ignored", topic=msg.topic)
            return None
        try:
            return decode(msg.payload, max_bytes=self.init.config.max_command_bytes)
        except PayloadError as exc:
            self._refused(msg.topic, str(exc), "payloads_refused")
            return None

    def _refused(self, topic: str, reason: str, counter: str | None) -> None:
        """Counted, summarised in the audit trail; logged: the first few, then 1 in 1000."""
        if counter is not None:
            self.stats[counter] += 1
        self._refusals += 1
        self.commands.refuse_early("malformed", reason, topic)
        if self._refusals <= 10 or self._refusals % 1000 == 0:
            _log.warning(
                "sparkplug_message_refused", topic=topic, reason=reason, count=self._refusals
            )

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def statistics(self) -> dict[str, Any]:
        return {
            **self.stats,
            "bdseq": self.bdseq.value,
            "seq": self.seq,
            "born": self.born,
            "host_online": self.host_online,
        }


def _changed(old: Any, new: Any, band: float) -> bool:
    if old is _UNSET or type(old) is not type(new):
        return True
    if isinstance(new, float):
        if math.isnan(new) or math.isnan(old):
            return not (math.isnan(new) and math.isnan(old))
        return bool(abs(new - old) >= band) if band > 0 else new != old
    return bool(new != old)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000

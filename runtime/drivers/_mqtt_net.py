"""The network half of the ``mqtt`` driver: a handler on the shared MQTT session's own thread."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import random
import threading
import time
import weakref
from typing import Any

import structlog

from hal import IecType, Quality
from hal.mqtt import Inbound, MqttError, MqttSession, SessionHandler
from runtime.drivers._buffered import UNSET
from runtime.drivers._mqtt_options import MqttDriverOptions, decode_input, encode_output
from runtime.mqtt._payloads import dumps, iso

__all__ = ["MqttLink", "Slot"]

Slot = tuple[Any, Quality, int]  # value, quality, arrival (time.monotonic_ns)
_live: weakref.WeakSet[MqttLink] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for link in list(_live):
        link.stop(link.opts.close_timeout_s)


class MqttLink(SessionHandler):
    """Keeps one MQTT session alive and exchanges values with the scan through slots.

    ``slots[channel]`` is written only by the network thread (a whole tuple per message, an
    atomic dict store under the GIL), ``outputs[channel]`` only by the scan thread: neither
    side ever waits for the other. Outputs are published by exception every ``publish_ms``
    and all of them every ``refresh_s`` and after each (re)connect.
    """

    def __init__(
        self,
        opts: MqttDriverOptions,
        *,
        name: str,
        inputs: dict[str, tuple[str, IecType]],
        outputs: dict[str, str],
    ) -> None:
        self.opts = opts
        self.name = name
        self.client_id = opts.client_id or f"vplc-io-{name}-{random.getrandbits(32):08x}"
        self._inputs = inputs  # topic → (channel, type)
        self._out_topics = outputs  # channel → topic
        self.slots: dict[str, Slot] = {}
        self.outputs: dict[str, Any] = dict.fromkeys(outputs, UNSET)
        self.first_inputs = threading.Event()
        if not inputs:
            self.first_inputs.set()
        self.max_epoch_seen: int | None = None
        self.claimed = False
        self.superseded = False
        # Handover state (runtime.state._handover): the epoch may be claimed late (a standby claims
        # only when it takes over) and an owner may go silent before it is superseded.
        self.epoch: int | None = opts.owner_epoch
        self.standby = False
        self.held = False
        self.stats: dict[str, Any] = {
            "messages_in": 0,
            "bad_payloads": 0,
            "retained_ignored": 0,
            "published": 0,
        }
        self.log = structlog.get_logger("vplc.drivers.mqtt").bind(driver=name)
        self.session: MqttSession | None = None
        self.connected = threading.Event()  # replaced by the session's at start()
        self._owner_seen: asyncio.Event | None = None

    @property
    def owned(self) -> bool:
        return self.epoch is not None or self.standby

    # ------------------------------------------------------------------ thread control
    def start(self) -> None:
        topics = [(t, self.opts.qos) for t in self._inputs]
        if self.owned:
            topics.append((self.opts.owner_topic, 1))
        self.session = MqttSession(
            self.opts,
            self,
            client_id=self.client_id,
            name=f"driver {self.name}",
            subscriptions=topics,
            log=self.log,
        )
        self.connected = self.session.connected
        # A daemon thread, so a forgotten close() cannot hang the process at exit; the atexit
        # hook still gives every open link its final flush of outputs.
        self.session.start(f"mqtt-io-{self.client_id}")
        _live.add(self)

    def stop(self, timeout: float) -> None:
        """Ask for a last flush of every output and a clean disconnect; wait ≤ timeout."""
        if self.session is not None:
            self.session.stop(timeout)
        _live.discard(self)

    def connection_status(self) -> dict[str, Any]:
        return self.session.connection_status() if self.session is not None else {}

    def statistics(self) -> dict[str, Any]:
        conn = self.connection_status()
        return self.stats | {
            "connects": conn.get("connects", 0),
            "connect_failures": conn.get("connect_failures", 0),
            "last_error": self.stats.get("last_error") or conn.get("last_error", ""),
            "connection": conn,
        }

    # ------------------------------------------------------------------ session handler
    async def on_connect(self, session: MqttSession) -> None:
        """Claim ownership (if an owner); then ``serve`` publishes the outputs."""
        if self._owner_seen is None:
            self._owner_seen = asyncio.Event()
        self.claimed = False
        if self.epoch is not None and not self.standby:
            await self._claim(session, self.epoch)

    async def serve(self, session: MqttSession) -> None:
        o = self.opts
        last: dict[str, Any] = {}  # per session: a reconnect republishes everything
        next_full = 0.0
        while True:
            now = time.monotonic()
            full = now >= next_full
            if full:
                next_full = now + o.refresh_s
            await self._flush(session, last, full=full)
            await asyncio.sleep(o.publish_ms / 1000)

    async def on_stop(self, session: MqttSession) -> None:
        await self._flush(session, {}, full=True)  # the safe values the engine wrote last

    def on_down(self, error: MqttError, *, was_up: bool) -> None:
        if self._owner_seen is not None:
            self._owner_seen.clear()

    async def _claim(self, session: MqttSession, epoch: int) -> None:
        # A retained claim arrives right after SUBACK; claiming blindly could overwrite a
        # newer owner's retained claim with our older epoch, so look first.
        assert self._owner_seen is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._owner_seen.wait(), self.opts.owner_wait_s)
        if self.max_epoch_seen is not None and self.max_epoch_seen > epoch:
            self._supersede()
            return
        body = {"epoch": epoch, "client": self.client_id, "ts": iso(time.time_ns())}
        await session.publish(self.opts.owner_topic, dumps(body), qos=1, retain=True)
        self.claimed = True
        self.log.info("mqtt_io_owner_claimed", epoch=epoch)

    def _supersede(self) -> None:
        if not self.superseded:
            self.superseded = True
            self.log.warning("mqtt_io_superseded", epoch=self.epoch, owner=self.max_epoch_seen)

    # ------------------------------------------------------------------ handover (any thread)
    def claim_now(self, epoch: int, timeout: float) -> bool:
        """Claim ``epoch`` on the live session and start publishing; False if not possible.

        Blocks the caller until the broker acknowledged the claim (QoS 1), so no write tagged
        with the new epoch can reach the device before the claim does.
        """
        session = self.session
        if session is None or not session.connected.is_set():
            return False
        if self.max_epoch_seen is not None and self.max_epoch_seen >= epoch:
            return False  # a claim must be above every claim ever made, or it means nothing
        # Values a standby put here were never computed by the app's programs: the first
        # write under the new epoch must be of the first cycle this instance runs.
        for channel in self.outputs:
            self.outputs[channel] = UNSET
        self.epoch, self.standby, self.superseded, self.held = epoch, False, False, False
        body = {"epoch": epoch, "client": self.client_id, "ts": iso(time.time_ns())}

        async def publish() -> None:
            if not session.subscribed(self.opts.owner_topic):  # an owner already is
                await session.subscribe(self.opts.owner_topic, 1)
            await session.publish(self.opts.owner_topic, dumps(body), qos=1, retain=True)
            self.claimed = True

        try:
            session.call(publish(), timeout)
        except Exception as exc:
            self.stats["last_error"] = f"claim: {type(exc).__name__}: {exc}"
            return False
        self.log.info("mqtt_io_owner_claimed", epoch=epoch, handover=True)
        return True

    def hold(self, *, last_write: bool) -> None:
        """Go silent, after one last full write of the current outputs if ``last_write``."""
        values = dict(self.outputs)  # copied now: later cycles may put safe values in
        self.held = True
        session = self.session
        if not last_write or session is None or not session.connected.is_set():
            return
        if not self.claimed or self.superseded:
            return

        async def final() -> None:
            for channel, value in values.items():
                if value is not UNSET:
                    payload = encode_output(value, self.epoch, time.time_ns())
                    session.publish_nowait(self._out_topics[channel], payload, qos=self.opts.qos)
                    self.stats["published"] += 1

        loop = session.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(final(), loop)

    def unhold(self) -> None:
        self.held = False

    # ------------------------------------------------------------------ receiving
    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        if msg.topic == self.opts.owner_topic:
            if self.owned:
                self._on_owner(msg.payload)
            return
        entry = self._inputs.get(msg.topic)
        if entry is None:
            return
        stats = self.stats
        stats["messages_in"] += 1
        if msg.retain:
            # A retained reading proves nothing about the sender being alive now.
            stats["retained_ignored"] += 1
            return
        channel, iec = entry
        try:
            value, quality = decode_input(msg.payload, iec)
        except (ValueError, TypeError):
            stats["bad_payloads"] += 1
            value, quality = None, Quality.BAD
        slots = self.slots
        slots[channel] = (value, quality, time.monotonic_ns())
        if not self.first_inputs.is_set() and len(slots) == len(self._inputs):
            self.first_inputs.set()

    def _on_owner(self, payload: bytes) -> None:
        try:
            epoch = json.loads(payload).get("epoch")
        except (ValueError, AttributeError):
            epoch = None
        if isinstance(epoch, int) and not isinstance(epoch, bool):
            if self.max_epoch_seen is None or epoch > self.max_epoch_seen:
                self.max_epoch_seen = epoch
            own = self.epoch
            if own is not None and epoch > own:
                self._supersede()
        if self._owner_seen is not None:
            self._owner_seen.set()

    # ------------------------------------------------------------------ publishing
    async def _flush(self, session: MqttSession, last: dict[str, Any], *, full: bool) -> None:
        o = self.opts
        if self.held:
            return  # released in a handover: the next owner writes from the next cycle
        if self.owned and (self.superseded or not self.claimed):
            return  # the device would refuse them: a passive instance stays silent
        for channel, value in list(self.outputs.items()):
            if value is UNSET or (not full and last.get(channel, UNSET) == value):
                continue
            payload = encode_output(value, self.epoch, time.time_ns())
            session.publish_nowait(self._out_topics[channel], payload, qos=o.qos)
            last[channel] = value
            self.stats["published"] += 1

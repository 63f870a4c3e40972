"""The network half of the ``mqtt`` driver: aiomqtt on its own thread and asyncio loop."""

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

import aiomqtt
import structlog

from hal import IecType, Quality
from runtime.drivers._mqtt_options import MqttDriverOptions, decode_input, encode_output
from runtime.mqtt._payloads import dumps, iso

__all__ = ["UNSET", "MqttLink", "Slot"]

UNSET: Any = object()  # an output the scan has not written yet: nothing to publish
Slot = tuple[Any, Quality, int]  # value, quality, arrival (time.monotonic_ns)
_live: weakref.WeakSet[MqttLink] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for link in list(_live):
        link.stop(link.opts.close_timeout_s)


class MqttLink:
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
        self.client_id = opts.client_id or f"vplc-io-{name}-{random.getrandbits(32):08x}"
        self._inputs = inputs  # topic → (channel, type)
        self._out_topics = outputs  # channel → topic
        self.slots: dict[str, Slot] = {}
        self.outputs: dict[str, Any] = dict.fromkeys(outputs, UNSET)
        self.connected = threading.Event()
        self.first_inputs = threading.Event()
        if not inputs:
            self.first_inputs.set()
        self.max_epoch_seen: int | None = None
        self.claimed = False
        self.superseded = False
        # Handover state (runtime._handover): the epoch may be claimed late (a standby claims
        # only when it takes over) and an owner may go silent before it is superseded.
        self.epoch: int | None = opts.owner_epoch
        self.standby = False
        self.held = False
        self._session_client: aiomqtt.Client | None = None
        self.stats: dict[str, Any] = {
            "connects": 0,
            "connect_failures": 0,
            "messages_in": 0,
            "bad_payloads": 0,
            "retained_ignored": 0,
            "published": 0,
            "last_error": "",
        }
        self.log = structlog.get_logger("vplc.drivers.mqtt").bind(driver=name)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._owner_seen: asyncio.Event | None = None

    # ------------------------------------------------------------------ thread control
    def start(self) -> None:
        ready = threading.Event()

        def body() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            self._owner_seen = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(self._main())
            finally:
                loop.close()

        # A daemon, so a forgotten close() cannot hang the process at exit; the atexit hook
        # still gives every open link its final flush of outputs.
        self._thread = threading.Thread(target=body, name=f"mqtt-io-{self.client_id}", daemon=True)
        self._thread.start()
        ready.wait()
        _live.add(self)

    def stop(self, timeout: float) -> None:
        """Ask for a last flush of every output and a clean disconnect; wait ≤ timeout."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        self._thread = None
        _live.discard(self)

    # ------------------------------------------------------------------ connection
    def _client(self) -> aiomqtt.Client:
        o = self.opts
        return aiomqtt.Client(
            o.host,
            o.port,
            username=o.username,
            password=o.password(),
            identifier=self.client_id,
            keepalive=o.keepalive_s,
            tls_context=o.tls.context() if o.tls else None,
            timeout=5.0,
        )

    async def _main(self) -> None:
        assert self._stop is not None
        o = self.opts
        backoff = o.reconnect_min_s
        while not self._stop.is_set():
            try:
                async with self._client() as client:
                    self.stats["connects"] += 1
                    self.log.info("mqtt_io_connected", host=o.host, port=o.port)
                    backoff = o.reconnect_min_s
                    await self._session(client)
                    self.connected.clear()
                    return
            except (aiomqtt.MqttError, OSError, ValueError) as exc:
                if self.connected.is_set():
                    self.log.warning("mqtt_io_disconnected", error=str(exc))
                else:
                    self.stats["connect_failures"] += 1  # also a drop before subscribing
                self.stats["last_error"] = f"{type(exc).__name__}: {exc}"
                self.connected.clear()
            # Jitter spreads the reconnects of many drivers after a broker restart.
            delay = backoff * random.uniform(0.8, 1.2)
            backoff = min(backoff * 2, o.reconnect_max_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        """Subscribe, claim ownership, then receive and publish until stop or a drop."""
        assert self._stop is not None and self._owner_seen is not None
        o = self.opts
        topics: list[tuple[str, int]] = [(t, o.qos) for t in self._inputs]
        owned = self.epoch is not None or self.standby
        if owned:
            topics.append((o.owner_topic, 1))
            self._owner_seen.clear()
            self.claimed = False
        if topics:
            await client.subscribe(topics)
        self.connected.set()  # only now can inputs arrive: what a waiting test needs to know
        tasks = [asyncio.create_task(self._receive(client))]
        self._session_client = client
        if self.epoch is not None and not self.standby:
            await self._claim(client, self.epoch)
        tasks.append(asyncio.create_task(self._publish(client)))
        stopper = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._session_client = None
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if stopper in done:
            await self._flush(client, {}, full=True)  # the safe values the engine wrote last

    async def _claim(self, client: aiomqtt.Client, epoch: int) -> None:
        # A retained claim arrives right after SUBACK; claiming blindly could overwrite a
        # newer owner's retained claim with our older epoch, so look first.
        assert self._owner_seen is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._owner_seen.wait(), self.opts.owner_wait_s)
        if self.max_epoch_seen is not None and self.max_epoch_seen > epoch:
            self._supersede()
            return
        body = {"epoch": epoch, "client": self.client_id, "ts": iso(time.time_ns())}
        await client.publish(self.opts.owner_topic, dumps(body), qos=1, retain=True)
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
        loop, client = self._loop, self._session_client
        if loop is None or client is None or loop.is_closed():
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
            await client.publish(self.opts.owner_topic, dumps(body), qos=1, retain=True)
            self.claimed = True

        try:
            asyncio.run_coroutine_threadsafe(publish(), loop).result(timeout)
        except Exception as exc:
            self.stats["last_error"] = f"claim: {type(exc).__name__}: {exc}"
            return False
        self.log.info("mqtt_io_owner_claimed", epoch=epoch, handover=True)
        return True

    def hold(self, *, last_write: bool) -> None:
        """Go silent, after one last full write of the current outputs if ``last_write``."""
        values = dict(self.outputs)  # copied now: later cycles may put safe values in
        self.held = True
        loop, client = self._loop, self._session_client
        if not last_write or loop is None or client is None or loop.is_closed():
            return
        if not self.claimed or self.superseded:
            return

        async def final() -> None:
            for channel, value in values.items():
                if value is not UNSET:
                    payload = encode_output(value, self.epoch, time.time_ns())
                    await client.publish(self._out_topics[channel], payload, qos=self.opts.qos)
                    self.stats["published"] += 1

        asyncio.run_coroutine_threadsafe(final(), loop)

    def unhold(self) -> None:
        self.held = False

    # ------------------------------------------------------------------ receiving
    async def _receive(self, client: aiomqtt.Client) -> None:
        owned = self.epoch is not None or self.standby
        owner_topic = self.opts.owner_topic if owned else None
        inputs, slots, stats = self._inputs, self.slots, self.stats
        async for message in client.messages:
            topic = message.topic.value
            raw = message.payload
            payload = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode()
            if topic == owner_topic:
                self._on_owner(payload)
                continue
            entry = inputs.get(topic)
            if entry is None:
                continue
            stats["messages_in"] += 1
            if message.retain:
                # A retained reading proves nothing about the sender being alive now.
                stats["retained_ignored"] += 1
                continue
            channel, iec = entry
            try:
                value, quality = decode_input(payload, iec)
            except (ValueError, TypeError):
                stats["bad_payloads"] += 1
                value, quality = None, Quality.BAD
            slots[channel] = (value, quality, time.monotonic_ns())
            if not self.first_inputs.is_set() and len(slots) == len(inputs):
                self.first_inputs.set()

    def _on_owner(self, payload: bytes) -> None:
        assert self._owner_seen is not None
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
        self._owner_seen.set()

    # ------------------------------------------------------------------ publishing
    async def _publish(self, client: aiomqtt.Client) -> None:
        o = self.opts
        last: dict[str, Any] = {}  # per session: a reconnect republishes everything
        next_full = 0.0
        while True:
            now = time.monotonic()
            full = now >= next_full
            if full:
                next_full = now + o.refresh_s
            await self._flush(client, last, full=full)
            await asyncio.sleep(o.publish_ms / 1000)

    async def _flush(self, client: aiomqtt.Client, last: dict[str, Any], *, full: bool) -> None:
        o = self.opts
        if self.held:
            return  # released in a handover: the next owner writes from the next cycle
        if (self.epoch is not None or self.standby) and (self.superseded or not self.claimed):
            return  # the device would refuse them: a passive instance stays silent
        for channel, value in list(self.outputs.items()):
            if value is UNSET or (not full and last.get(channel, UNSET) == value):
                continue
            payload = encode_output(value, self.epoch, time.time_ns())
            await client.publish(self._out_topics[channel], payload, qos=o.qos)
            last[channel] = value
            self.stats["published"] += 1

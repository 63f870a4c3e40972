"""The network half of telemetry and commands: an aiomqtt client on its own thread and loop."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from typing import Any

import aiomqtt
import structlog

from runtime._audit import AuditLog
from runtime._command_handler import CommandHandler
from runtime.mqtt._audit_head import AuditHeadPublisher
from runtime.mqtt._config import MqttConfig
from runtime.mqtt._payloads import Topics, dumps, iso, offline_payload, point_payload
from runtime.mqtt._tap import KIND_ALARM, KIND_POINT, TelemetryTap, alarm_payload

__all__ = ["BridgeCore"]

_BATCH = 5000  # queue items published per drain before the pump sleeps again
_CHUNK = 500  # messages handed to the client at once
_COUNTERS = ("connects", "connect_failures", "published", "point_updates")
_MORE_COUNTERS = ("publish_failures", "discarded_on_reconnect")


class BridgeCore:
    """Birth/last will, by-exception publishing, refresh, stats, reconnect and commands.

    Independent of where the values come from: a subclass supplies the tap (whose queue is
    drained), the command handler, the birth body, the engine statistics and the wall time
    of app time 0. MqttBridge runs it next to the scan; the out-of-process bridge runs it in
    a child process over a shared-memory mirror of the process image.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        app_name: str,
        tap: TelemetryTap,
        handler: CommandHandler,
        audit: AuditLog | None,
    ) -> None:
        self.config = config
        self.app_name = app_name
        self.topics = Topics(site=config.site, node=config.node, app=app_name)
        self.tap = tap
        self.handler = handler
        self.audit = audit
        self.audit_head = (
            AuditHeadPublisher(audit, f"{self.topics.prefix}/audit/head") if audit else None
        )
        self._point_topics = [self.topics.point(p.name) for p in tap.points]
        self.log = structlog.get_logger("vplc.mqtt").bind(app=app_name)
        self.connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stats: dict[str, Any] = dict.fromkeys(_COUNTERS + _MORE_COUNTERS, 0)
        self._stats |= {"last_outage_s": 0.0, "total_outage_s": 0.0, "last_error": ""}
        self._down_since: float | None = time.monotonic()
        self._dropped_at_down = 0
        self.goodbye_reason = "shutdown"  # the reason of the "offline" birth on stop

    # ------------------------------------------------------------------ what subclasses supply
    def _birth(self, wall_ns: int) -> dict[str, Any]:
        raise NotImplementedError

    def _engine_statistics(self) -> dict[str, Any]:
        raise NotImplementedError

    def _wall0_ns(self) -> int:
        raise NotImplementedError

    def _connection_changed(self, up: bool) -> None:
        """Called on the loop thread when the session comes up or goes down."""

    # ------------------------------------------------------------------ thread control
    def start_loop(self, name: str) -> None:
        """Start the network thread running the asyncio loop; returns at once."""
        if self._thread is not None:
            return
        ready = threading.Event()

        def body() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(self._main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=body, name=name)
        self._thread.daemon = True
        self._thread.start()
        ready.wait()

    def stop_loop(self, timeout: float = 5.0) -> None:
        """Publish 'offline', disconnect and join the thread."""
        if self._thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)
        self._thread = None
        self.handler.close()  # the last summary of refusals before authentication

    def statistics(self) -> dict[str, Any]:
        down = self._down_since
        return {
            **self._stats,
            "connected": self.connected.is_set(),
            "disconnected_for_s": round(time.monotonic() - down, 3) if down else 0.0,
            "queue": self.tap.statistics(),
            "commands": {"accepted": self.handler.accepted, "refused": self.handler.refused},
            "audit_head": self.audit.head if self.audit else None,
        }

    # ------------------------------------------------------------------ connection
    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        will = aiomqtt.Will(
            self.topics.birth,
            dumps(offline_payload(app=self.app_name, reason="connection lost")),
            qos=1,
            retain=True,
        )
        return aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password(),
            identifier=cfg.client_id or f"vplc-{cfg.site}-{cfg.node}-{self.app_name}",
            will=will,
            keepalive=cfg.keepalive_s,
            tls_context=cfg.tls.context() if cfg.tls else None,
            timeout=5.0,
        )

    async def _main(self) -> None:
        assert self._stop is not None
        cfg = self.config
        backoff = cfg.reconnect_min_s
        while not self._stop.is_set():
            try:
                async with self._client() as client:
                    self._on_connected()
                    backoff = cfg.reconnect_min_s
                    await self._session(client)
                    goodbye = offline_payload(
                        app=self.app_name, reason=self.goodbye_reason, wall_ns=time.time_ns()
                    )
                    await client.publish(self.topics.birth, dumps(goodbye), qos=1, retain=True)
                    self.connected.clear()
                    return
            except (aiomqtt.MqttError, OSError, ValueError) as exc:
                self._on_disconnected(exc)
            # Jitter spreads the reconnects of many nodes after a broker restart.
            delay = backoff * random.uniform(0.8, 1.2)
            backoff = min(backoff * 2, cfg.reconnect_max_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    def _on_connected(self) -> None:
        now = time.monotonic()
        outage = now - self._down_since if self._down_since is not None else 0.0
        dropped = self.tap.dropped - self._dropped_at_down
        stale = len(self.tap.queue)
        self.tap.queue.clear()  # older than the full refresh that follows
        self._stats["discarded_on_reconnect"] += stale
        self._stats["connects"] += 1
        if self._stats["connects"] > 1:
            self._stats["last_outage_s"] = round(outage, 3)
            self._stats["total_outage_s"] = round(self._stats["total_outage_s"] + outage, 3)
            self.log.warning(
                "mqtt_reconnected",
                disconnected_s=round(outage, 3),
                dropped_while_down=dropped,
                discarded_stale=stale,
            )
        else:
            self.log.info("mqtt_connected", host=self.config.host, port=self.config.port)
        self._down_since = None
        self.connected.set()
        self._connection_changed(True)

    def _on_disconnected(self, exc: BaseException) -> None:
        if self.connected.is_set() or self._down_since is None:
            self._down_since = time.monotonic()
            self._dropped_at_down = self.tap.dropped
            self.log.warning("mqtt_disconnected", error=str(exc))
        else:
            self._stats["connect_failures"] += 1
        self._stats["last_error"] = f"{type(exc).__name__}: {exc}"
        self.connected.clear()
        self._connection_changed(False)

    async def _session(self, client: aiomqtt.Client) -> None:
        """Birth, then telemetry, commands and stats until stop (returns) or a drop (raises)."""
        assert self._stop is not None
        await client.subscribe(self.topics.cmd, qos=1)
        await client.publish(
            self.topics.birth,
            dumps(self._birth(time.time_ns())),
            qos=1,
            retain=True,
        )
        self.tap.request_refresh()
        tasks = [
            asyncio.create_task(self._pump(client)),
            asyncio.create_task(self._serve_commands(client)),
            asyncio.create_task(self._periodic(client)),
        ]
        if self.audit_head is not None:  # the trail's signed head, retained, after each append
            pub = lambda t, p: client.publish(t, p, qos=1, retain=True)  # noqa: E731
            tasks.append(asyncio.create_task(self.audit_head.run(pub)))
        stopper = asyncio.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if stopper in done:
            await self._drain(client)  # the last values before "offline"

    # ------------------------------------------------------------------ publishing
    async def _pump(self, client: aiomqtt.Client) -> None:
        period = self.config.publish_ms / 1000
        while True:
            await self._drain(client)
            await asyncio.sleep(period)

    async def _drain(self, client: aiomqtt.Client) -> None:
        queue = self.tap.queue
        topics = self.topics
        alarms = self.tap.alarms
        # Wall time of app time 0, so events carry the wall time at which they were sampled.
        wall0 = self._wall0_ns()
        each = self.config.point_messages != "batch"
        grouped = self.config.point_messages != "each"
        sent = 0
        while queue and sent < _BATCH:
            batch: list[tuple[str, bytes, int]] = []
            changed: dict[str, Any] = {}
            taken = updates = 0
            while queue and taken < _CHUNK:
                kind, idx, a, b, c, now_ns = queue.popleft()
                taken += 1
                if kind == KIND_POINT:
                    updates += 1
                    body = point_payload(a, b, c, now_ns, wall0 + now_ns)
                    if each:
                        batch.append((self._point_topics[idx], dumps(body), 0))
                    if grouped:
                        changed[self.tap.points[idx].name] = body
                    continue
                stamp = {"ts": iso(wall0 + now_ns), "t_app": now_ns / 1e9}
                if kind == KIND_ALARM:
                    body = alarm_payload(a) | stamp
                    batch.append((topics.alarm(alarms[idx][0]), dumps(body), 1))
                else:
                    body = {"state": a[0], "fault_reason": a[1]} | stamp
                    batch.append((topics.state, dumps(body), 1))
            if changed:
                body = {"ts": iso(time.time_ns()), "points": changed}
                batch.append((topics.points, dumps(body), 0))
            await self._publish_batch(client, batch)
            sent += taken
            self._stats["published"] += len(batch)
            self._stats["point_updates"] += updates
            await asyncio.sleep(0)  # let commands and socket writes in between chunks

    async def _publish_batch(
        self, client: aiomqtt.Client, batch: list[tuple[str, bytes, int]]
    ) -> None:
        # QoS 0 telemetry goes straight to paho's outgoing queue: aiomqtt's publish() awaits
        # a confirmation per message (one event-loop round trip each, ~2k msg/s measured),
        # while paho queues at once and aiomqtt's socket writer flushes the queue in bulk.
        paho = client._client
        try:
            for topic, payload, qos in batch:
                if qos == 0:
                    info = paho.publish(topic, payload, 0, True)
                    if info.rc != 0:
                        raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
                else:
                    await client.publish(topic, payload, qos=qos, retain=True)
        except aiomqtt.MqttError:
            self._stats["publish_failures"] += 1
            raise

    async def _periodic(self, client: aiomqtt.Client) -> None:
        cfg = self.config
        next_refresh = time.monotonic() + cfg.refresh_s
        while True:
            await asyncio.sleep(cfg.stats_s)
            if time.monotonic() >= next_refresh:
                next_refresh += cfg.refresh_s
                self.tap.request_refresh()
            body = {
                "ts": iso(time.time_ns()),
                "engine": self._engine_statistics(),
                "bridge": self.statistics(),
            }
            await client.publish(self.topics.stats, dumps(body), qos=0, retain=False)

    # ------------------------------------------------------------------ commands
    async def _serve_commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if not message.topic.matches(self.topics.cmd):
                continue
            raw = message.payload
            payload = bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw).encode()
            # Parse, authenticate and rates here (cheap: a junk flood never leaves the loop);
            # the rest waits for the scan and the disk, so it runs off the loop. retain: a
            # retained copy is refused; response None: a flood's refusal left unanswered.
            screened = self.handler.screen(payload, retain=message.retain, topic=str(message.topic))
            if screened.finish is None:
                # An early refusal: queued, never awaited (a PUBACK waits behind the flood).
                if screened.response is not None:
                    body = screened.response.model_dump_json().encode()
                    client._client.publish(self.topics.cmd_response, body, 1, False)
                continue
            response = await asyncio.to_thread(screened.finish)
            await client.publish(
                self.topics.cmd_response,
                response.model_dump_json().encode(),
                qos=1,
                retain=False,
            )

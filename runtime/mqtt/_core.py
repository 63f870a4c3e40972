"""The network half of telemetry and commands: a session handler on the shared MQTT session."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import structlog

from hal.mqtt import Inbound, MqttError, MqttSession, SessionHandler, Will
from runtime.mqtt._audit_head import AuditHeadPublisher
from runtime.mqtt._config import MqttConfig
from runtime.mqtt._instance import Instance
from runtime.mqtt._payloads import (
    Topics,
    dumps,
    iso,
    offline_payload,
    param_payload,
    phase_payload,
    point_payload,
    rounder,
)
from runtime.mqtt._tap import (
    KIND_ALARM,
    KIND_PARAM,
    KIND_PHASE,
    KIND_POINT,
    TelemetryTap,
    alarm_payload,
)
from runtime.ops._audit import AuditLog
from runtime.ops._command_handler import CommandHandler

__all__ = ["BridgeCore"]

_CHUNK = 500  # messages handed to the client at once
_PREDECESSOR_S = 5.0  # a will this soon after our first connect: the run we replaced
_COUNTERS = (
    "published",
    "point_updates",
    "coalesced",
    "publish_failures",
    "discarded_on_reconnect",
)


class BridgeCore(SessionHandler):
    """Birth/last will, by-exception publishing, refresh, stats, commands, truth after stop.

    Independent of where the values come from: a subclass supplies the tap (whose queue is
    drained), the command handler, the birth body, the engine statistics and the wall time
    of app time 0. MqttBridge runs it next to the scan; the out-of-process bridge runs it in
    a child process over a shared-memory mirror of the process image. The connection itself
    (TLS, login, backoff, reconnect, loud failures) is the shared :class:`MqttSession`'s.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        app_name: str,
        tap: TelemetryTap,
        handler: CommandHandler,
        audit: AuditLog | None,
        instance: Instance,
        resolutions: list[float | None],
    ) -> None:
        self.config = config
        self.app_name = app_name
        self.instance = instance
        self.topics = Topics(site=config.site, node=config.node, app=app_name)
        self.tap = tap
        self.handler = handler
        self.audit = audit
        self.audit_head = (
            AuditHeadPublisher(audit, f"{self.topics.prefix}/audit/head") if audit else None
        )
        self._point_topics = [self.topics.point(p.name) for p in tap.points]
        self._point_names = [p.name for p in tap.points]
        self._round = [rounder(r) for r in resolutions]
        self.log = structlog.get_logger("vplc.mqtt").bind(app=app_name)
        client_id = config.client_id or f"vplc-{config.site}-{config.node}-{app_name}"
        will = offline_payload(app=app_name, reason="connection lost", instance=instance)
        will["instance"]["client_id"] = client_id  # a twin on our id is named by its will
        self.session = MqttSession(
            config,
            self,
            client_id=client_id,
            name=f"bridge {self.topics.prefix}",
            will=Will(self.topics.birth, dumps(will), qos=1, retain=True),
            subscriptions=[(self.topics.cmd, 1), (self.topics.birth, 1)],
            secrets="command tokens (access configuration)" if handler.access else None,
            log=self.log,
        )
        self.connected = self.session.connected
        self._stats: dict[str, Any] = dict.fromkeys(_COUNTERS, 0)
        self._stats |= {"last_outage_s": 0.0, "total_outage_s": 0.0}
        self._down_since: float | None = time.monotonic()
        self._dropped_at_down = 0
        # The last retained body per topic: a clean stop republishes each marked stale.
        self._retained: dict[str, dict[str, Any]] = {}
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

    def _final_sample(self) -> None:
        """Before the goodbye: queue the values the scan left (the outputs' safe values)."""

    # ------------------------------------------------------------------ thread control
    def start_loop(self, name: str) -> None:
        """Start the network thread running the session; returns at once."""
        self.session.start(name)

    def stop_loop(self, timeout: float = 5.0) -> None:
        """Last values, stale marks and 'offline', disconnect, join the thread."""
        self.session.stop(timeout)
        self.handler.close()  # the last summary of refusals before authentication

    def statistics(self) -> dict[str, Any]:
        conn = self.session.connection_status()
        down = self._down_since
        return {
            **self._stats,
            "connects": conn["connects"],
            "connect_failures": conn["connect_failures"],
            "last_error": conn["last_error"],
            "connected": self.connected.is_set(),
            "disconnected_for_s": round(time.monotonic() - down, 3) if down else 0.0,
            "connection": conn,
            "instance": self.instance.id,
            "queue": self.tap.statistics(),
            "commands": {"accepted": self.handler.accepted, "refused": self.handler.refused},
            "audit_head": self.audit.head if self.audit else None,
        }

    # ------------------------------------------------------------------ session handler
    async def on_connect(self, session: MqttSession) -> None:
        now = time.monotonic()
        outage = now - self._down_since if self._down_since is not None else 0.0
        stale = len(self.tap.queue)
        self.tap.queue.clear()  # older than the full refresh that follows
        self._stats["discarded_on_reconnect"] += stale
        if session.state.connects > 1:
            self._stats["last_outage_s"] = round(outage, 3)
            self._stats["total_outage_s"] = round(self._stats["total_outage_s"] + outage, 3)
            self.log.info(
                "mqtt_republishing",
                dropped_while_down=self.tap.dropped - self._dropped_at_down,
                discarded_stale=stale,
            )
        self._down_since = None
        self._connection_changed(True)
        birth = self._birth(time.time_ns())
        birth["instance"] = self.instance.as_dict() | {"client_id": session.client_id}
        await session.publish(self.topics.birth, dumps(birth), qos=1, retain=True)
        self.tap.request_refresh()

    def on_down(self, error: MqttError, *, was_up: bool) -> None:
        if was_up or self._down_since is None:
            self._down_since = time.monotonic()
            self._dropped_at_down = self.tap.dropped
        self._connection_changed(False)

    async def serve(self, session: MqttSession) -> None:
        tasks = [self._pump(session), self._periodic(session)]
        if self.audit_head is not None:  # the trail's signed head, retained, after each append
            head = self.audit_head.run(lambda t, p: session.publish(t, p, qos=1, retain=True))
            tasks.append(head)
        await asyncio.gather(*tasks)

    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        if msg.topic == self.topics.cmd:
            await self._serve_command(session, msg)
        elif msg.topic == self.topics.birth:
            self._check_birth(session, msg)

    async def on_stop(self, session: MqttSession) -> None:
        """Truth after stop: the last values, every retained topic stale, state and goodbye."""
        self._final_sample()
        await self._drain(session)
        wall_ns = time.time_ns()
        stamp = {"stale": True, "stale_since": iso(wall_ns)}
        for topic, body in self._retained.items():
            marked = body | stamp
            if "q" in body:
                marked["q"] = "BAD"
            session.publish_nowait(topic, dumps(marked), qos=0, retain=True)
        goodbye = offline_payload(
            app=self.app_name,
            reason=self.goodbye_reason,
            wall_ns=wall_ns,
            instance=self.instance,
            state=self.tap.last_state[0] if self.tap.last_state else "STOP",
        )
        goodbye["instance"]["client_id"] = session.client_id
        await session.publish(self.topics.birth, dumps(goodbye), qos=1, retain=True)

    # ------------------------------------------------------------------ collisions
    def _check_birth(self, session: MqttSession, msg: Inbound) -> None:
        """Another instance's birth or will on our topic: two runtimes claim this node.

        Evidence: another instance's online birth arriving live (published while we are
        connected); any message of another instance found retained when we *re*connect (it
        replaced ours while we ran; with one client id it is the twin's will, which the broker
        sends when our connect takes the id over); its will arriving live later on. Not
        evidence: at our first connect, a retained or just-sent message of a predecessor (a
        crashed run whose client id we took over) - an online one is only a warning.
        """
        try:
            body = json.loads(msg.payload)
            other = body.get("instance") or {}
            other_id = other.get("id")
        except (ValueError, AttributeError):
            return
        if not other_id or other_id == self.instance.id:
            return
        who = f"instance {other_id} (host {other.get('host')}, pid {other.get('pid')})"
        state = session.state
        first = state.connects <= 1
        online = body.get("status") == "online"
        if first and msg.retain:
            if online:
                self.log.warning(
                    "mqtt_previous_instance_online",
                    other=who,
                    note=f"the retained birth on {self.topics.birth} says another instance "
                    "is online; if it still runs, two runtimes publish as this node",
                )
            return
        up_for = time.monotonic() - state.up_since if state.up_since is not None else 0.0
        if first and not online and up_for < _PREDECESSOR_S:
            return
        if other.get("client_id") == session.client_id:
            clash = (
                f"with the same client id {session.client_id!r}: each connect of one makes "
                "the broker drop the other"
            )
        else:
            clash = "they overwrite each other's retained values"
        session.state.report_collision(
            f"{who} publishes on {self.topics.prefix} while this instance ({self.instance.id}) "
            f"runs: two runtimes as one node, {clash}. Give each its own node (and client "
            "id), or stop one."
        )

    # ------------------------------------------------------------------ publishing
    async def _pump(self, session: MqttSession) -> None:
        period = self.config.publish_ms / 1000
        while True:
            await self._drain(session)
            await asyncio.sleep(period)

    async def _drain(self, session: MqttSession) -> None:
        """Publish what the tap queued: every event, and each point's latest sample.

        Like an OPC UA monitored item with a queue of one, a point that changed several
        times since the last drain (``sample_ms`` below ``publish_ms``) is published once,
        with its latest value: an HMI sees every point at most ``publish_ms`` old, and the
        message rate is bounded by points × drains per second, whatever the scan rate.
        """
        queue = self.tap.queue
        # Wall time of app time 0, so events carry the wall time at which they were sampled.
        wall0 = self._wall0_ns()
        latest: dict[int, tuple[Any, ...]] = {}
        events: list[tuple[str, dict[str, Any], int]] = []
        # What is queued now (at most the tap's capacity); later samples wait for the next
        # drain, so a scan faster than the network cannot keep this loop from sleeping.
        samples = 0
        for _ in range(len(queue)):
            item = queue.popleft()
            if item[0] == KIND_POINT:
                latest[item[1]] = item
                samples += 1
            else:
                events.append(self._event(item[0], item[1], item[2], item[5], wall0))
        self._stats["coalesced"] += samples - len(latest)
        self._stats["point_updates"] += len(latest)
        await self._publish_drained(session, events, list(latest.values()), wall0)

    async def _publish_drained(
        self,
        session: MqttSession,
        events: list[tuple[str, dict[str, Any], int]],
        latest: list[tuple[Any, ...]],
        wall0: int,
    ) -> None:
        each = self.config.point_messages != "batch"
        grouped = self.config.point_messages != "each"
        rounders, topics, names = self._round, self._point_topics, self._point_names
        self._publish_batch(session, events, {})
        changed: dict[str, Any] = {}
        for start in range(0, len(latest), _CHUNK):
            batch: list[tuple[str, dict[str, Any], int]] = []
            for _kind, idx, a, b, c, now_ns in latest[start : start + _CHUNK]:
                body = point_payload(rounders[idx](a), b, c, now_ns, wall0 + now_ns)
                if each:
                    batch.append((topics[idx], body, 0))
                if grouped:
                    changed[names[idx]] = body
            self._publish_batch(session, batch, {})
            await asyncio.sleep(0)  # let commands and socket writes in between chunks
        if changed:
            self._publish_batch(session, [], changed)

    def _event(
        self, kind: int, idx: int, view: Any, now_ns: int, wall0: int
    ) -> tuple[str, dict[str, Any], int]:
        stamp = {"ts": iso(wall0 + now_ns), "t_app": now_ns / 1e9}
        topics, tap = self.topics, self.tap
        if kind == KIND_ALARM:
            return topics.alarm(tap.alarms[idx][0]), alarm_payload(view) | stamp, 1
        if kind == KIND_PARAM:
            return topics.parameter(tap.params[idx][0]), param_payload(view) | stamp, 1
        if kind == KIND_PHASE:
            return topics.phase(tap.phases[idx][0]), phase_payload(view) | stamp, 1
        return topics.state, {"state": view[0], "fault_reason": view[1]} | stamp, 1

    def _publish_batch(
        self,
        session: MqttSession,
        batch: list[tuple[str, dict[str, Any], int]],
        changed: dict[str, Any],
    ) -> None:
        # Queued without waiting (publish_nowait): the session sends them in order, in bulk;
        # QoS 1 messages are acknowledged on the way, and a reconnect republishes everything.
        retained = self._retained
        try:
            for topic, body, qos in batch:
                retained[topic] = body
                session.publish_nowait(topic, dumps(body), qos=qos, retain=True)
            self._stats["published"] += 1
            if changed:
                body = {"ts": iso(time.time_ns()), "points": changed}
                session.publish_nowait(self.topics.points, dumps(body), qos=0, retain=False)
                self._stats["published"] += 1
        except MqttError:
            self._stats["publish_failures"] += 1
            raise

    async def _periodic(self, session: MqttSession) -> None:
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
            await session.publish(self.topics.stats, dumps(body), qos=0, retain=False)

    # ------------------------------------------------------------------ commands
    async def _serve_command(self, session: MqttSession, msg: Inbound) -> None:
        # Parse, authenticate and rates here (cheap: a junk flood never leaves the loop); the
        # rest waits for the scan and the disk, so it runs off the loop. retain: a retained
        # copy is refused; response None: a flood's refusal left unanswered.
        screened = self.handler.screen(msg.payload, retain=msg.retain, topic=msg.topic)
        if screened.finish is None:
            # An early refusal: queued, never awaited (a PUBACK waits behind the flood).
            if screened.response is not None:
                body = screened.response.model_dump_json().encode()
                session.publish_nowait(self.topics.cmd_response, body, qos=1, retain=False)
            return
        response = await asyncio.to_thread(screened.finish)
        await session.publish(
            self.topics.cmd_response,
            response.model_dump_json().encode(),
            qos=1,
            retain=False,
        )

"""hal.mqtt.MqttSession against a real Mosquitto: restored subscriptions, bugs, stop vs will,
publish order, and the failure kinds aiomqtt's errors map to."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from hal.mqtt import (
    BrokerOptions,
    Inbound,
    MqttError,
    MqttSession,
    SessionHandler,
    Will,
    connections,
)
from hal.mqtt._wire import drop_error
from tests.mqtt.broker import Broker, free_port
from tests.mqtt.conftest import broker, mosquitto, own_broker

__all__ = ["broker", "mosquitto", "own_broker"]  # the fixtures, reused


class Recorder(SessionHandler):
    def __init__(self, fail_on: bytes | None = None) -> None:
        self.got: list[Inbound] = []
        self.fail_on = fail_on
        self.connects = 0
        self.downs: list[MqttError] = []

    async def on_connect(self, session: MqttSession) -> None:
        self.connects += 1

    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        if msg.payload == self.fail_on:
            raise RuntimeError("a bug in the handler")
        self.got.append(msg)

    def on_down(self, error: MqttError, *, was_up: bool) -> None:
        self.downs.append(error)


def _publish(port: int, topic: str, payload: bytes, retain: bool = False) -> None:
    async def send() -> None:
        async with aiomqtt.Client("127.0.0.1", port) as c:
            await c.publish(topic, payload, qos=1, retain=retain)

    asyncio.run(send())


def _wait(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class Watcher:
    """An independent aiomqtt subscriber on its own thread, recording (topic, payload)."""

    def __init__(self, port: int, topic: str, qos: int = 1) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._body, args=(port, topic, qos), daemon=True)
        self._thread.start()
        assert self._ready.wait(5)

    def _body(self, port: int, topic: str, qos: int) -> None:
        async def main() -> None:
            async with aiomqtt.Client("127.0.0.1", port) as c:
                await c.subscribe(topic, qos=qos)
                self._ready.set()
                collect = asyncio.create_task(self._collect(c))
                await self._stop.wait()
                collect.cancel()

        self._loop.run_until_complete(main())

    async def _collect(self, client: aiomqtt.Client) -> None:
        async for msg in client.messages:
            assert isinstance(msg.payload, bytes)
            with self._lock:
                self.seen.append((msg.topic.value, msg.payload))

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.seen)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


class CuttableLink:
    """A TCP relay to the broker whose connections can be cut: a network failure that the
    session did not cause (no DISCONNECT), so the broker must send the will."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inner, _ = self._server.accept()
            except OSError:
                return
            outer = socket.create_connection(("127.0.0.1", self._target))
            self._socks += [inner, outer]
            for a, b in ((inner, outer), (outer, inner)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._socks.clear()

    def close(self) -> None:
        self._server.close()
        self.cut()


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Watcher]:
    w = Watcher(broker.port, "obs/#")
    yield w
    w.close()


def test_subscriptions_are_restored_after_the_broker_restarts(own_broker: Broker) -> None:
    rec = Recorder()
    opts = BrokerOptions(port=own_broker.port, reconnect_min_s=0.05, reconnect_max_s=0.2)
    session = MqttSession(opts, rec, client_id="t-restore", name="t", subscriptions=[("a/1", 1)])
    session.start()
    try:
        assert session.connected.wait(5)
        session.call(session.subscribe("a/2", 1), 5)  # added later: restored as well
        own_broker.restart()
        _wait(lambda: rec.connects == 2)
        _wait(session.connected.is_set)
        _publish(own_broker.port, "a/1", b"one")
        _publish(own_broker.port, "a/2", b"two")
        _wait(lambda: len(rec.got) == 2)
        assert sorted(m.payload for m in rec.got) == [b"one", b"two"]
        status = session.connection_status()
        assert status["connects"] == 2 and status["drops"] == 1
        assert any(c["who"] == "t" and c["connected"] for c in connections())
    finally:
        session.stop()
    assert session.connection_status()["stopped"] is True


def test_a_bug_in_the_handler_is_logged_and_the_session_comes_back(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(fail_on=b"boom")
    opts = BrokerOptions(port=broker.port, reconnect_min_s=0.05, reconnect_max_s=0.2)
    with caplog.at_level(logging.ERROR, logger="vplc.mqtt"):
        session = MqttSession(opts, rec, client_id="t-bug", name="t-bug",
                              subscriptions=[("bug/#", 1)])  # fmt: skip
        session.start()
        try:
            assert session.connected.wait(5)
            _publish(broker.port, "bug/x", b"boom")
            _wait(lambda: rec.connects == 2)
            _wait(session.connected.is_set)
            _publish(broker.port, "bug/x", b"fine")
            _wait(lambda: [m.payload for m in rec.got] == [b"fine"])
        finally:
            session.stop()
    errors = [r for r in caplog.records if getattr(r, "vplc_event", "") == "mqtt_handler_error"]
    assert errors and "a bug in the handler" in errors[0].vplc_fields["error"]


def test_clean_stop_suppresses_the_will_and_a_lost_connection_sends_it(
    broker: Broker, watcher: Watcher
) -> None:
    link = CuttableLink(broker.port)
    try:
        opts = BrokerOptions(port=link.port, keepalive_s=2, reconnect_min_s=5, reconnect_max_s=5)
        rec = Recorder()
        for name in ("clean", "lost"):
            will = Will(f"obs/will/{name}", b"gone", qos=1, retain=False)
            session = MqttSession(opts, rec, client_id=f"t-{name}", name=name, will=will)
            session.start()
            assert session.connected.wait(5)
            if name == "clean":
                session.stop()
            else:
                link.cut()  # the network fails under a live session: the broker sends the will
                _wait(lambda: ("obs/will/lost", b"gone") in watcher.snapshot(), 10)
                _wait(lambda: bool(rec.downs))
                assert rec.downs[0].kind == "closed", rec.downs
                session.stop()
        time.sleep(0.5)
        assert ("obs/will/clean", b"gone") not in watcher.snapshot()
    finally:
        link.close()


def test_the_loop_of_a_caller_runs_the_session(broker: Broker) -> None:
    """sim serve's way: ``await session.run(stop)`` on its own asyncio loop."""
    rec = Recorder()

    async def main() -> None:
        stop = asyncio.Event()
        opts = BrokerOptions(port=broker.port)
        session = MqttSession(opts, rec, client_id="t-run", name="t-run",
                              subscriptions=[("run/#", 0)])  # fmt: skip
        runner = asyncio.create_task(session.run(stop))
        while not session.connected.is_set():
            await asyncio.sleep(0.02)
        await session.publish("run/x", b"self", qos=1)
        while not rec.got:
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(runner, 5)

    asyncio.run(main())
    assert rec.got[0].payload == b"self" and rec.got[0].retain is False


class Burst(SessionHandler):
    """Queues a numbered burst, mixing QoS 0, QoS 1 queued and QoS 1 awaited, then its last
    words at stop: all of it must arrive, in the order it was put."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sent = threading.Event()

    async def on_connect(self, session: MqttSession) -> None:
        for i in range(self.n):
            body = json.dumps({"i": i}).encode()
            if i % 1000 == 999:
                await session.publish("obs/seq", body, qos=1)
            else:
                session.publish_nowait("obs/seq", body, qos=1 if i % 7 == 0 else 0)
            if i % 500 == 499:
                await asyncio.sleep(0)
        self.sent.set()

    async def on_stop(self, session: MqttSession) -> None:
        session.publish_nowait("obs/seq", b'{"i": "last-nowait"}', qos=0)
        await session.publish("obs/seq", b'{"i": "last"}', qos=1)


def test_messages_arrive_in_the_order_they_were_put_and_nothing_queued_is_lost_at_stop(
    broker: Broker,
) -> None:
    """The watcher subscribes at QoS 0: MQTT keeps order only among messages of one QoS, and a
    broker whose in-flight window to a QoS 1 subscriber is full holds QoS 1 messages back
    while QoS 0 ones pass (the order this session sent them in is what is checked)."""
    burst = Burst(5_000)
    watcher = Watcher(broker.port, "obs/seq", qos=0)
    session = MqttSession(BrokerOptions(port=broker.port), burst, client_id="t-seq", name="seq")
    session.start()
    try:
        try:
            assert burst.sent.wait(20)
        finally:
            session.stop()
        _wait(lambda: any(p == b'{"i": "last"}' for _, p in watcher.snapshot()), 10)
    finally:
        watcher.close()
    got = [json.loads(p)["i"] for t, p in watcher.snapshot() if t == "obs/seq"]
    assert got == [*range(5_000), "last-nowait", "last"]
    assert session.connection_status()["outbound_dropped"] == 0


def test_publishing_while_down_is_refused_with_a_reason(broker: Broker) -> None:
    session = MqttSession(BrokerOptions(port=free_port()), SessionHandler(), client_id="t-down",
                          name="t-down")  # fmt: skip
    with pytest.raises(MqttError) as err:
        session.publish_nowait("x/y", b"1")
    assert err.value.kind == "closed"


def test_an_invalid_topic_is_refused_at_the_caller(broker: Broker) -> None:
    session = MqttSession(BrokerOptions(port=broker.port), SessionHandler(), client_id="t-inv",
                          name="t-inv")  # fmt: skip
    session.start()
    try:
        assert session.connected.wait(5)
        with pytest.raises(ValueError, match="a/#"):
            session.call(_nowait(session, "a/#"), 5)
        session.call(session.publish("ok/topic", b"1", qos=1), 5)  # still connected
        assert session.connection_status()["drops"] == 0
    finally:
        session.stop()


async def _nowait(session: MqttSession, topic: str) -> None:
    session.publish_nowait(topic, b"x")


@pytest.mark.parametrize(
    ("options", "kind"),
    [
        ({"host": "no-such-broker.invalid"}, "dns"),
        ({"port": "dead"}, "refused"),
        ({"password_file": "missing"}, "config"),
    ],
)
def test_a_failed_attempt_says_why(
    broker: Broker, tmp_path: Path, options: dict[str, Any], kind: str
) -> None:
    data: dict[str, Any] = {"port": broker.port, "connect_timeout_s": 3.0} | options
    if data["port"] == "dead":
        data["port"] = free_port()
    if "password_file" in data:
        data |= {"username": "u", "allow_insecure": True,
                 "password_file": tmp_path / "missing"}  # fmt: skip
    rec = Recorder()
    session = MqttSession(BrokerOptions(**data), rec, client_id="t-kind", name=f"t-{kind}")
    session.start()
    try:
        _wait(lambda: bool(rec.downs), 10)
    finally:
        session.stop()
    assert rec.downs[0].kind == kind, rec.downs[0]
    assert session.connection_status()["reason"] == kind


def test_a_twin_on_our_client_id_drops_the_first_session_loudly(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker closes the older of two sessions with one client id. Mosquitto 2.0.11 closes
    it without a DISCONNECT reason, so the drop is logged as a lost connection (the runtime's
    birth check names the twin, tests/mqtt/test_connection_state.py); a broker that names the
    reason makes it a takeover (next test)."""
    opts = BrokerOptions(port=broker.port, reconnect_min_s=5, reconnect_max_s=5)
    first, second = Recorder(), Recorder()
    one = MqttSession(opts, first, client_id="t-twin", name="twin-1")
    two = MqttSession(opts, second, client_id="t-twin", name="twin-2")
    with caplog.at_level(logging.WARNING, logger="vplc.mqtt"):
        one.start()
        try:
            assert one.connected.wait(5)
            two.start()
            assert two.connected.wait(5)
            _wait(lambda: bool(first.downs))
        finally:
            two.stop()
            one.stop()
    assert first.downs[0].kind in ("takeover", "closed"), first.downs
    assert not second.downs
    assert one.connection_status()["drops"] == 1
    logged = [r for r in caplog.records if getattr(r, "vplc_event", "") == "mqtt_disconnected"]
    assert [r.vplc_fields["who"] for r in logged] == ["twin-1"]
    assert "connection lost" in logged[0].vplc_fields["error"] or first.downs[0].kind == "takeover"


def _dropped_by(reason: str) -> aiomqtt.MqttError:
    """What ``client.messages`` raises when paho reports a disconnect for ``reason``."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    code = ReasonCode(PacketTypes.DISCONNECT, reason)
    try:
        try:
            raise aiomqtt.MqttCodeError(code, "Unexpected disconnection")
        except aiomqtt.MqttCodeError as cause:
            raise aiomqtt.MqttError("Disconnected during message iteration") from cause
    except aiomqtt.MqttError as err:
        return err


@pytest.mark.parametrize(
    ("reason", "kind", "text"),
    [
        ("Session taken over", "takeover", "Session taken over"),
        ("Unspecified error", "closed", "closed without a reason"),
        ("Keep alive timeout", "closed", "Keep alive timeout"),
        ("Server shutting down", "closed", "Server shutting down"),
    ],
)
def test_the_reason_a_broker_gives_for_a_drop_is_kept(reason: str, kind: str, text: str) -> None:
    err = drop_error(_dropped_by(reason), "mqtt://b:1883")
    assert err.kind == kind and text in err.detail, err


def test_a_takeover_is_reported_as_a_client_id_collision() -> None:
    from hal.mqtt._state import ConnectionState

    records: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def info(self, event: str, **kw: Any) -> None:
            records.append((event, kw))

        warning = error = info

    state = ConnectionState(name="n", endpoint="mqtt://b:1883", client_id="cid", log=Log())
    state.up()
    state.dropped(drop_error(_dropped_by("Session taken over"), "mqtt://b:1883"))
    assert state.as_dict()["takeovers"] == 1
    assert "same client id 'cid'" in (state.as_dict()["collision"] or "")
    assert "mqtt_client_id_collision" in [e for e, _ in records]


def _sockets_to(port: int) -> list[socket.socket]:
    """This process's open sockets connected to ``port`` (found by the garbage collector)."""
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.family == socket.AF_INET and obj.fileno() >= 0:
            with contextlib.suppress(OSError):
                if obj.getpeername()[1] == port:
                    found.append(obj)
    return found


def test_the_session_socket_sends_without_nagle_delay(own_broker: Broker) -> None:
    """TCP_NODELAY: a command's answer must not wait for the ACK of the previous message."""
    session = MqttSession(BrokerOptions(port=own_broker.port), SessionHandler(), client_id="t-nd",
                          name="t-nd")  # fmt: skip
    session.start()
    try:
        assert session.connected.wait(5)
        socks = _sockets_to(own_broker.port)
        assert len(socks) == 1, socks
        assert socks[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        session.stop()

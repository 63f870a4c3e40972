"""hal.mqtt.MqttSession against a real Mosquitto: restored subscriptions, bugs, stop vs will."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hal.mqtt import BrokerOptions, Inbound, MqttSession, SessionHandler, Will, connections
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import broker, mosquitto, own_broker

__all__ = ["broker", "mosquitto", "own_broker"]  # the fixtures, reused


class Recorder(SessionHandler):
    def __init__(self, fail_on: bytes | None = None) -> None:
        self.got: list[Inbound] = []
        self.fail_on = fail_on
        self.connects = 0

    async def on_connect(self, session: MqttSession) -> None:
        self.connects += 1

    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        if msg.payload == self.fail_on:
            raise RuntimeError("a bug in the handler")
        self.got.append(msg)


def _publish(port: int, topic: str, payload: bytes, retain: bool = False) -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, 1, retain).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def _wait(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


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


def test_clean_stop_suppresses_the_will_and_a_lost_connection_sends_it(broker: Broker) -> None:
    seen: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    watcher = paho.Client(CallbackAPIVersion.VERSION2)

    def on_message(client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with lock:
            seen.append((msg.topic, bytes(msg.payload)))

    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("will/#", 1)
    watcher.loop_start()
    try:
        opts = BrokerOptions(port=broker.port, keepalive_s=2)
        for name in ("clean", "lost"):
            will = Will(f"will/{name}", b"gone", qos=1, retain=False)
            session = MqttSession(opts, SessionHandler(), client_id=f"t-{name}", name=name,
                                  will=will)  # fmt: skip
            session.start()
            assert session.connected.wait(5)
            if name == "clean":
                session.stop()
            else:
                # The network fails under a live session: the broker must send the will.
                loop = session.loop
                assert loop is not None and session._wire is not None
                sock = session._wire.client.socket()
                assert sock is not None
                loop.call_soon_threadsafe(sock.shutdown, socket.SHUT_RDWR)
                _wait(lambda: ("will/lost", b"gone") in seen, 10)
                session.stop()
        time.sleep(0.5)
        with lock:
            assert ("will/clean", b"gone") not in seen
    finally:
        watcher.loop_stop()
        watcher.disconnect()


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

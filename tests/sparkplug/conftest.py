"""Sparkplug fixtures: the real Mosquitto, an edge node on a running app, Tahu's JS codec."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from runtime.mqtt import MqttConfig
from runtime.sparkplug import SparkplugNode
from tests._node import npm_project
from tests.conftest import write_access
from tests.mqtt import conftest as _mqtt
from tests.mqtt.broker import Broker

# The MQTT tests' fixtures: the real Mosquitto (installed if missing), the scanning test app.
mosquitto, broker, own_broker = _mqtt.mosquitto, _mqtt.broker, _mqtt.own_broker
engine, state_dir, access = _mqtt.engine, _mqtt.state_dir, _mqtt.access
TOKENS = _mqtt.TOKENS

DECODER = Path(__file__).resolve().parent / "decoder"
GROUP, EDGE, DEVICE = "plant1", "edge7", "testapp"
NBIRTH = f"spBv1.0/{GROUP}/NBIRTH/{EDGE}"
NDEATH = f"spBv1.0/{GROUP}/NDEATH/{EDGE}"
NCMD = f"spBv1.0/{GROUP}/NCMD/{EDGE}"
DBIRTH = f"spBv1.0/{GROUP}/DBIRTH/{EDGE}/{DEVICE}"
DDATA = f"spBv1.0/{GROUP}/DDATA/{EDGE}/{DEVICE}"
DDEATH = f"spBv1.0/{GROUP}/DDEATH/{EDGE}/{DEVICE}"
DCMD = f"spBv1.0/{GROUP}/DCMD/{EDGE}/{DEVICE}"
HOST = "scada1"
STATE = f"spBv1.0/STATE/{HOST}"


def ensure_codec() -> str:
    """node and the pinned sparkplug-payload (npm ci from package-lock.json), as `make
    sparkplug-interop` installs them; installed here when missing. Fails, never skips."""
    return npm_project(DECODER, "sparkplug-payload", "the Sparkplug tests")


class Codec:
    """Eclipse Tahu's JS implementation in a node process: decode and encode payloads."""

    def __init__(self, node: str) -> None:
        self.proc = subprocess.Popen(
            [node, str(DECODER / "codec.js")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()

    def _ask(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def decode(self, data: bytes) -> dict[str, Any]:
        answer = self._ask({"op": "decode", "b64": base64.b64encode(data).decode()})
        assert answer["ok"], answer
        payload: dict[str, Any] = answer["payload"]
        return payload

    def encode(self, payload: dict[str, Any]) -> bytes:
        answer = self._ask({"op": "encode", "payload": payload})
        assert answer["ok"], answer
        return base64.b64decode(answer["b64"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(5)


@pytest.fixture(scope="session")
def codec() -> Iterator[Codec]:
    try:
        node = ensure_codec()
    except RuntimeError as exc:
        pytest.fail(f"Sparkplug tests need Tahu's sparkplug-payload: {exc}", pytrace=False)
    c = Codec(node)
    yield c
    c.close()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float


class Host:
    """A plain paho client on its own thread: a Sparkplug host's view of the broker."""

    def __init__(self, port: int, *, client_id: str = "test-host") -> None:
        self.messages: list[Received] = []
        self._cv = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([("spBv1.0/#", 1)])
        time.sleep(0.2)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cv:
            self.messages.append(Received(msg.topic, msg.payload, msg.retain, time.monotonic()))
            self._cv.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._cv:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(
        self, topic: str, count: int = 1, timeout: float = 15.0, since: int = 0
    ) -> list[Received]:
        """The messages on ``topic`` (after the first ``since``) once there are ``count``."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = [m for m in self.messages if m.topic == topic][since:]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({m.topic for m in self.messages})
                    raise AssertionError(f"{count} message(s) on {topic}: got {len(got)}; {seen}")
                self._cv.wait(left)

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def host(broker: Broker) -> Iterator[Host]:
    h = Host(broker.port)
    yield h
    h.close()


def node_config(port: int, folder: Path, **sparkplug: Any) -> MqttConfig:
    return MqttConfig(
        port=port,
        stats_s=0.5,
        reconnect_max_s=1.0,
        keepalive_s=5,
        allow_insecure=True,
        access_file=write_access(folder),
        audit_file=folder / "audit.jsonl",
        sample_ms=5,
        publish_ms=20,
        sparkplug={"group_id": GROUP, "edge_node_id": EDGE} | sparkplug,
    )


NodeFactory = Callable[..., SparkplugNode]


@pytest.fixture
def make_node(engine: Any, broker: Broker, tmp_path: Path) -> Iterator[NodeFactory]:
    nodes: list[SparkplugNode] = []

    def make(*, port: int | None = None, **sparkplug: Any) -> SparkplugNode:
        cfg = node_config(port or broker.port, tmp_path, **sparkplug)
        node = SparkplugNode(engine, cfg)
        node.start()
        nodes.append(node)
        return node

    yield make
    for n in nodes:
        n.stop()


def metric_by_name(payload: dict[str, Any], name: str) -> dict[str, Any]:
    for m in payload.get("metrics", []):
        if m.get("name") == name:
            return m
    raise AssertionError(f"no metric {name!r} in {[m.get('name') for m in payload['metrics']]}")


def props(metric: dict[str, Any]) -> dict[str, Any]:
    """Tahu JS decodes a PropertySet as {key: {type, value}}."""
    return {k: v["value"] for k, v in metric.get("properties", {}).items()}


def poll(cond: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``cond`` every 50 ms until it gives a true value, and return that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def audited(folder: Path) -> list[dict[str, Any]]:
    """The command records of the node's audit trail ``folder/audit.jsonl`` (none yet: [])."""
    path = folder / "audit.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["event"] == "command"]

"""MQTT fixtures: real Mosquitto brokers (installed if missing), a running app, bridges, an HMI."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from runtime import ScanEngine, load_app
from runtime.mqtt import MqttBridge, MqttConfig
from runtime.ops._access import AccessConfig, UserSpec
from runtime.ops._audit import AuditLog
from tests.conftest import TOKENS, MakeApp, memory_manifest, token_users, write_access
from tests.mqtt.broker import Broker, ensure_mosquitto, plain_broker, secure_broker

SITE, NODE = "plant1", "edge7"
PREFIX = f"vplc/{SITE}/{NODE}/testapp"
BROKER_USERS = {"vplc": "broker-pw", "hmi": "hmi-pw"}

APP_LOGIC = """
from runtime import Program
from runtime.blocks import ALARM, PHASE

class Main(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.x = app.point("X")
        self.y = app.point("Y")
        self.running = app.point("RUNNING")
        self.n = app.point("N")
        self.gain = app.param("gain")
        self.high = ALARM(H=50.0, H_EN=True, TEXT="X high")
        self.phase = PHASE(AUTO_COMPLETE_ACTING=True)

    def execute(self, ctx):
        self.count += 1
        self.y.value = self.x.value * self.gain.value
        self.high(ctx, IN=self.x.value)
        self.phase(ctx)
        self.running.value = self.phase.IS_RUNNING
        self.n.value = self.count // 100
"""


def app_manifest(period_ms: float = 10.0) -> dict[str, Any]:
    channels = {"x": "in", "y": "out", "r": "out", "n": "out"}
    return memory_manifest(
        drivers={"mem": {"type": "memory", "options": {"channels": channels}}},
        tasks=[{"name": "fast", "period_ms": period_ms, "programs": ["main"]}],
        points=[
            {
                "name": "X",
                "type": "LREAL",
                "direction": "in",
                "driver": "mem",
                "channel": "x",
                "unit": "degC",
                "range": [-100, 100],
            },
            {
                "name": "Y",
                "type": "LREAL",
                "direction": "out",
                "driver": "mem",
                "channel": "y",
                "safe": -1.0,
                "unit": "%",
            },
            {
                "name": "RUNNING",
                "type": "BOOL",
                "direction": "out",
                "driver": "mem",
                "channel": "r",
                "safe": False,
            },
            {
                "name": "N",
                "type": "INT",
                "direction": "out",
                "driver": "mem",
                "channel": "n",
                "safe": 0,
            },
        ],
    )


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state dir per test (audit key, used command ids), also for `vplc` subprocesses."""
    folder = tmp_path / "state"
    monkeypatch.setenv("VPLC_STATE_DIR", str(folder))
    monkeypatch.delenv("VPLC_AUDIT_KEY", raising=False)
    return folder


@pytest.fixture(scope="session")
def mosquitto() -> tuple[str, str]:
    """NOTE: may run `apt-get install -y mosquitto` (see tests/mqtt/broker.py); fails loudly."""
    try:
        return ensure_mosquitto()
    except RuntimeError as exc:
        pytest.fail(f"MQTT tests need Mosquitto: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def broker(
    mosquitto: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    b = plain_broker(mosquitto[0], tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def own_broker(mosquitto: tuple[str, str], tmp_path: Path) -> Iterator[Broker]:
    """A broker this test alone may stop and restart."""
    b = plain_broker(mosquitto[0], tmp_path / "own-mosquitto")
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def tls_broker(
    mosquitto: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Broker, dict[str, Path]]]:
    b, certs = secure_broker(*mosquitto, tmp_path_factory.mktemp("mosq-tls"), BROKER_USERS)
    b.start()
    yield b, certs
    b.stop()


def write_run_config(folder: Path, port: int, site: str, node: str, **extra: Any) -> Path:
    """``folder/mqtt.yaml`` for ``vplc run --mqtt`` on the test broker, olga its one user
    (``folder/access.yaml``), the audit trail ``folder/audit.jsonl``."""
    write_access(folder, names=["olga"])
    cfg = {
        "host": "127.0.0.1",
        "port": port,
        "site": site,
        "node": node,
        "access_file": "access.yaml",
        "audit_file": "audit.jsonl",
        **extra,
        "allow_insecure": True,  # tokens over the plain test broker
    }
    path = folder / "mqtt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def access() -> AccessConfig:
    return AccessConfig(users={u: UserSpec(**spec) for u, spec in token_users().items()})


@contextmanager
def scanning(folder: Path) -> Iterator[ScanEngine]:
    """The app in ``folder`` scanning on the real clock in its own thread; stopped after."""
    eng = ScanEngine(load_app(folder))
    eng.start()
    eng.start_thread()
    try:
        yield eng
    finally:
        eng.request_stop()
        eng.join(5)
        eng.close()


@pytest.fixture
def engine(make_app: MakeApp) -> Iterator[ScanEngine]:
    """The test app scanning every 10 ms on the real clock in its own thread."""
    with scanning(make_app(app_manifest(), APP_LOGIC)) as eng:
        yield eng


BridgeFactory = Callable[..., MqttBridge]


@pytest.fixture
def make_bridge(
    engine: ScanEngine, broker: Broker, access: AccessConfig, tmp_path: Path
) -> Iterator[BridgeFactory]:
    bridges: list[MqttBridge] = []

    def make(*, port: int | None = None, audit: bool = True, **overrides: Any) -> MqttBridge:
        options: dict[str, Any] = {
            "port": port or broker.port,
            "site": SITE,
            "node": NODE,
            "stats_s": 0.5,
            "reconnect_max_s": 1.0,
            "keepalive_s": 5,
            # The test broker is plain TCP on loopback; tokens in commands need this then.
            "allow_insecure": True,
        }
        cfg = MqttConfig(**(options | overrides))
        log = AuditLog(tmp_path / "audit.jsonl", fsync=False) if audit else None
        bridge = MqttBridge(engine, cfg, access=access, audit=log)
        bridge.start()
        bridges.append(bridge)
        return bridge

    yield make
    for b in bridges:
        b.stop()


class Hmi:
    """What an HMI does: subscribe to the app's topics, remember them, send commands."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, Any, bool]] = []
        self._new = asyncio.Event()

    async def _collect(self) -> None:
        async for msg in self.client.messages:
            payload = msg.payload
            assert isinstance(payload, bytes | bytearray)
            try:
                body = json.loads(payload)
            except ValueError:  # e.g. the garbage commands a test itself sends on .../cmd
                body = bytes(payload)
            self.messages.append((str(msg.topic), body, bool(msg.retain)))
            self._new.set()

    async def wait_for(
        self,
        topic: str,
        pred: Callable[[Any], bool] = lambda _: True,
        timeout: float = 5.0,
        after: int = 0,
    ) -> Any:
        """The first message (already seen or new) on ``topic`` whose payload satisfies pred.

        ``after``: skip the first ``after`` messages (``len(hmi.messages)`` taken before an
        action), e.g. a retained offline birth an earlier test left on the shared broker.
        """
        deadline = time.monotonic() + timeout
        seen = after
        while True:
            for t, body, _ in self.messages[seen:]:
                if t == topic and pred(body):
                    return body
            seen = len(self.messages)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = [m for m in self.messages if m[0] == topic][-3:]
                raise AssertionError(f"no matching message on {topic} in {timeout} s; last {got}")
            self._new.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    def on(self, topic: str) -> list[Any]:
        return [body for t, body, _ in self.messages if t == topic]

    async def command(self, body: dict[str, Any] | bytes, timeout: float = 5.0) -> Any:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        before = len(self.on(f"{PREFIX}/cmd/response"))
        await self.client.publish(f"{PREFIX}/cmd", payload, qos=1)
        want_id = body.get("id") if isinstance(body, dict) else None
        return await self.wait_for(
            f"{PREFIX}/cmd/response",
            lambda r: r.get("id") == want_id and len(self.on(f"{PREFIX}/cmd/response")) > before,
            timeout,
        )


@asynccontextmanager
async def hmi_client(port: int, topic: str = f"{PREFIX}/#", **kwargs: Any) -> AsyncIterator[Hmi]:
    async with aiomqtt.Client("127.0.0.1", port, **kwargs) as client:
        hmi = Hmi(client)
        await client.subscribe(topic, qos=1)
        task = asyncio.create_task(hmi._collect())
        try:
            yield hmi
        finally:
            task.cancel()


def now_ts(offset_s: float = 0.0) -> str:
    """A command's ``ts``: the wall time now (plus ``offset_s``), ISO 8601 UTC."""
    when = datetime.now(UTC) + timedelta(seconds=offset_s)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cmd(cmd_name: str, user: str = "olga", **fields: Any) -> dict[str, Any]:
    """A command body as an HMI builds it (fresh id and ts), signed with the user's token."""
    body = {"id": f"{cmd_name}-{time.monotonic_ns()}", "cmd": cmd_name, "user": user}
    body["ts"] = now_ts()
    body["token"] = TOKENS.get(user, "wrong")
    body["reason"] = "test"
    return body | fields


async def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)

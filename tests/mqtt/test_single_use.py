"""Against the real Mosquitto: replays, stale and retained commands, an anonymous flood, the ACL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from runtime import ScanEngine
from runtime.ops._audit import verify_audit_log
from tests.mqtt.broker import Broker, free_port
from tests.mqtt.conftest import (
    BROKER_USERS,
    PREFIX,
    BridgeFactory,
    cmd,
    hmi_client,
    now_ts,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
ACL = ROOT / "runtime" / "mqtt" / "examples" / "vplc.acl"
RESP = f"{PREFIX}/cmd/response"


def _gain(engine: ScanEngine) -> Any:
    return engine.app.parameters["gain"].value


def _records(path: Path, event: str = "command") -> list[dict[str, Any]]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["event"] == event]


def test_replayed_and_stale_commands_are_refused_over_mqtt(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine, tmp_path: Path
) -> None:
    make_bridge()

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            body = cmd("set_parameter", name="gain", value=3.0)
            assert (await hmi.command(body))["status"] == "accepted"
            replay = await hmi.command(body)  # mosquitto_pub of the captured bytes, again
            assert replay["status"] == "refused" and "already used" in replay["reason"]
            other = await hmi.command(body | {"value": 8.0})
            assert other["status"] == "refused" and "already used" in other["reason"]
            old = await hmi.command(cmd("set_parameter", name="gain", value=9.0, ts=now_ts(-90)))
            assert old["status"] == "refused" and "stale" in old["reason"]

    asyncio.run(scenario())
    assert _gain(engine) == 3.0
    audit = tmp_path / "audit.jsonl"
    assert [r["status"] for r in _records(audit)] == ["accepted", "refused", "refused", "refused"]
    assert verify_audit_log(audit).ok


def test_a_retained_command_is_refused_at_every_connect(
    make_bridge: BridgeFactory, own_broker: Broker, engine: ScanEngine, tmp_path: Path
) -> None:
    """A retained HOLD used to run at connect and again after each reconnect."""

    async def publish_retained(body: bytes) -> None:
        async with aiomqtt.Client("127.0.0.1", own_broker.port) as client:
            await client.publish(f"{PREFIX}/cmd", body, qos=1, retain=True)

    body = cmd("set_parameter", name="gain", value=6.0)
    asyncio.run(publish_retained(json.dumps(body).encode()))

    async def scenario() -> None:
        async with hmi_client(own_broker.port) as hmi:
            first = make_bridge(port=own_broker.port)
            answer = await hmi.wait_for(RESP, lambda r: r.get("id") == body["id"])
            assert answer["status"] == "refused" and "retained" in answer["reason"]
            first.stop()  # the next connect gets the retained copy again
            n = len(hmi.messages)
            make_bridge(port=own_broker.port)
            again = await hmi.wait_for(RESP, lambda r: r.get("id") == body["id"], after=n)
            assert again["status"] == "refused" and "retained" in again["reason"]

    asyncio.run(scenario())
    asyncio.run(publish_retained(b""))  # what the refusal tells the operator to do
    assert _gain(engine) == 2.0
    refused = _records(tmp_path / "audit.jsonl")
    assert len(refused) == 2 and all("retained" in r["reason"] for r in refused)


@pytest.fixture
def flood_proc(broker: Broker) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(rate: float, seconds: float, kind: str) -> subprocess.Popen[str]:
        args = [str(broker.port), f"{PREFIX}/cmd", str(rate), str(seconds), kind]
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.mqtt.flood", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_an_anonymous_flood_costs_no_audit_write_and_a_real_command_gets_through(
    make_bridge: BridgeFactory,
    broker: Broker,
    engine: ScanEngine,
    tmp_path: Path,
    flood_proc: Any,
) -> None:
    bridge = make_bridge()
    latencies: list[float] = []

    async def scenario() -> None:
        # Subscribed to the answers only: an HMI on P/# would read the flood itself.
        async with hmi_client(broker.port, topic=RESP) as hmi:
            await wait_until(bridge.connected.is_set)
            proc = flood_proc(5000, 4.0, "mixed")
            await asyncio.sleep(1.0)  # the flood is on
            for value in (3.0, 4.0, 5.0):
                t0 = time.monotonic()
                ok = await hmi.command(cmd("set_parameter", name="gain", value=value), 15)
                latencies.append(time.monotonic() - t0)
                assert ok["status"] == "accepted", ok
                await asyncio.sleep(0.5)
            assert proc.stdout is not None
            sent = int(proc.stdout.readline())
            assert sent > 10_000
            await wait_until(lambda: bridge.handler.guard.counts["unanswered"] > 0, 10)

    asyncio.run(scenario())
    # Generous: the 200 ms figure is the benchmark's (tests/bench/bench_mqtt.py, flood).
    assert max(latencies) < 10.0, latencies
    audit = tmp_path / "audit.jsonl"
    assert [r["status"] for r in _records(audit)] == ["accepted"] * 3  # no record per junk
    bridge.handler.close()
    (summary,) = _records(audit, "command_refusals")
    counts = summary["counts"]
    assert counts["malformed"] + counts["unauthenticated"] > 5_000
    assert counts["unanswered"] > 5_000  # answers to strangers are rate-limited too
    assert summary["claimed_users"] == {"olga": counts["unauthenticated"]}
    assert _gain(engine) == 5.0


@pytest.fixture
def acl_broker(mosquitto: tuple[str, str], tmp_path: Path) -> Iterator[Broker]:
    """The shipped ACL (runtime/mqtt/examples/vplc.acl), anonymous clients allowed to connect."""
    folder = tmp_path / "acl-broker"
    folder.mkdir()
    pwfile = folder / "passwords"
    users = BROKER_USERS | {"dashboard": "dash-pw"}
    for i, (user, password) in enumerate(users.items()):
        flags = ["-c"] if i == 0 else []
        subprocess.run(
            [mosquitto[1], *flags, "-b", str(pwfile), user, password],
            check=True,
            capture_output=True,
        )
    pwfile.chmod(0o600)
    extra = f"allow_anonymous true\npassword_file {pwfile}\nacl_file {ACL}\n"
    b = Broker(mosquitto[0], folder, free_port(), extra)
    b.start()
    yield b
    b.stop()


def test_the_shipped_acl_keeps_anonymous_clients_off_the_command_topic(
    make_bridge: BridgeFactory, acl_broker: Broker, engine: ScanEngine, tmp_path: Path
) -> None:
    pw = tmp_path / "bridge.pw"
    pw.write_text(BROKER_USERS["vplc"])
    bridge = make_bridge(port=acl_broker.port, username="vplc", password_file=pw)
    hmi_login = {"username": "hmi", "password": BROKER_USERS["hmi"]}

    async def scenario() -> None:
        async with (
            hmi_client(acl_broker.port) as anonymous,
            hmi_client(acl_broker.port, **hmi_login) as hmi,
        ):
            await anonymous.wait_for(f"{PREFIX}/birth")  # telemetry: readable by anyone
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            # A perfectly valid, signed command from an anonymous client: the broker drops it.
            stolen = cmd("set_parameter", name="gain", value=7.0)
            await anonymous.client.publish(f"{PREFIX}/cmd", json.dumps(stolen).encode(), qos=1)
            await asyncio.sleep(1.5)
            assert not [r for r in hmi.on(RESP) if r.get("id") == stolen["id"]]
            assert bridge.handler.accepted == bridge.handler.refused == 0
            ok = await hmi.command(cmd("set_parameter", name="gain", value=4.0))
            assert ok["status"] == "accepted"
            # Nobody but the runtime reads P/cmd (tokens travel in it): not the anonymous
            # client, not the HMI itself, although both subscribed to P/#.
            assert not anonymous.on(f"{PREFIX}/cmd") and not hmi.on(f"{PREFIX}/cmd")
            assert not anonymous.on(RESP)  # nor the answers

    asyncio.run(scenario())
    assert _gain(engine) == 4.0


def test_the_signed_head_is_published_retained_and_anchors_the_trail(
    make_bridge: BridgeFactory, broker: Broker, tmp_path: Path
) -> None:
    """A copy of the head held by any subscriber catches what the node alone cannot: an old
    head file put back together with the trail cut back to it."""
    make_bridge()
    audit = tmp_path / "audit.jsonl"
    early = tmp_path / "early.head"

    async def scenario() -> dict[str, Any]:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            await hmi.command(cmd("set_parameter", name="gain", value=3.0))
            early.write_bytes((tmp_path / "audit.jsonl.head").read_bytes())
            await hmi.command(cmd("set_parameter", name="gain", value=4.0))
            head: dict[str, Any] = await hmi.wait_for(
                f"{PREFIX}/audit/head", lambda h: h["seq"] == 3
            )
        async with hmi_client(broker.port, topic=f"{PREFIX}/audit/head") as late:
            kept = await late.wait_for(f"{PREFIX}/audit/head")
            assert kept == head and late.messages[0][2] is True  # retained for newcomers
        return head

    head = asyncio.run(scenario())
    copy = tmp_path / "from-mqtt.head"
    copy.write_text(json.dumps(head))
    assert verify_audit_log(audit, head=copy).ok
    lines = audit.read_text().splitlines()
    audit.write_text("\n".join(lines[:-1]) + "\n")  # the last command removed…
    (tmp_path / "audit.jsonl.head").write_bytes(early.read_bytes())  # …and its head rolled back
    assert verify_audit_log(audit).ok  # the node's own files agree with each other
    anchored = verify_audit_log(audit, head=copy)
    assert not anchored.ok and "truncated" in anchored.error and anchored.line == 3

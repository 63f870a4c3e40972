"""Commands as an HMI sends them over a real broker: parameters, force, phase, alarms, roles."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hal import MemoryDriver
from runtime import RuntimeState, ScanEngine
from runtime.ops._audit import verify_audit_log
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import PREFIX, BridgeFactory, cmd, hmi_client, wait_until

RESP = f"{PREFIX}/cmd/response"


def test_parameter_write_accepted_and_out_of_range_refused(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    make_bridge()

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            ok = await hmi.command(cmd("set_parameter", name="gain", value=4.0))
            assert (ok["status"], ok["old"], ok["new"]) == ("accepted", 2.0, 4.0)
            assert engine.app.parameters["gain"].value == 4.0
            bad = await hmi.command(cmd("set_parameter", name="gain", value=11.0))
            assert bad["status"] == "refused" and "above max 10" in bad["reason"]
            assert bad["code"] == "out_of_limits" and ok["code"] is None  # on the reply topic
            typed = await hmi.command(cmd("set_parameter", name="gain", value="fast"))
            assert typed["status"] == "refused" and "expected LREAL" in typed["reason"]
            assert typed["code"] == "out_of_limits"
            unknown = await hmi.command(cmd("set_parameter", name="gian", value=1.0))
            assert (
                unknown["status"] == "refused" and "unknown parameter 'gian'" in unknown["reason"]
            )
            assert unknown["code"] is None  # no kind a front-end tells apart
            assert engine.app.parameters["gain"].value == 4.0

    asyncio.run(scenario())


def test_force_and_unforce_are_engineer_only_and_visible(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    make_bridge()
    mem = engine.app.drivers["mem"]
    assert isinstance(mem, MemoryDriver)

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            denied = await hmi.command(cmd("force", user="olga", point="X", value=5.0))
            assert denied["status"] == "refused" and "needs role 'engineer'" in denied["reason"]
            assert denied["code"] == "not_permitted"
            forced = await hmi.command(cmd("force", user="erik", point="X", value=5.0))
            assert forced["status"] == "accepted" and forced["new"] == 5.0
            body = await hmi.wait_for(f"{PREFIX}/points/X", lambda b: b["forced"])
            assert body["v"] == 5.0
            await wait_until(lambda: mem.values["y"] == 10.0)
            out = await hmi.command(cmd("force", user="erik", point="X", value=500.0))
            assert out["status"] == "refused" and "outside its range" in out["reason"]
            assert out["code"] == "out_of_limits"
            nope = await hmi.command(cmd("force", user="erik", point="Z", value=1))
            assert nope["status"] == "refused" and "unknown point 'Z'" in nope["reason"]
            un = await hmi.command(cmd("unforce", user="erik", point="X"))
            assert un["status"] == "accepted" and un["old"] == 5.0
            await hmi.wait_for(f"{PREFIX}/points/X", lambda b: not b["forced"])
            again = await hmi.command(cmd("unforce", user="erik", point="X"))
            assert again["status"] == "refused" and "not forced" in again["reason"]

    asyncio.run(scenario())


def test_phase_commands_and_alarm_acknowledge(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    make_bridge()
    mem = engine.app.drivers["mem"]
    assert isinstance(mem, MemoryDriver)

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            start = await hmi.command(cmd("phase", block="main.phase", command="START"))
            assert (start["status"], start["old"], start["new"]) == ("accepted", "IDLE", "RUNNING")
            await hmi.wait_for(f"{PREFIX}/points/RUNNING", lambda b: b["v"] is True)
            illegal = await hmi.command(cmd("phase", block="main.phase", command="RESTART"))
            assert illegal["status"] == "refused" and "not allowed in RUNNING" in illegal["reason"]
            wrong = await hmi.command(cmd("phase", block="main.high", command="START"))
            assert wrong["status"] == "refused" and "not a PHASE" in wrong["reason"]
            viewer = await hmi.command(
                cmd("phase", user="vera", block="main.phase", command="HOLD")
            )
            assert viewer["status"] == "refused" and "needs role 'operator'" in viewer["reason"]

            mem.values["x"] = 60.0
            topic = f"{PREFIX}/alarms/main.high"
            await hmi.wait_for(topic, lambda b: b["unacked"])
            ack = await hmi.command(cmd("ack_alarm", block="main.high"))
            assert ack["status"] == "accepted" and ack["old"] == {"unacked": True}
            await hmi.wait_for(topic, lambda b: b["active"] and not b["unacked"])
            missing = await hmi.command(cmd("ack_alarm", block="main.nothing"))
            assert missing["status"] == "refused" and "no block 'nothing'" in missing["reason"]

    asyncio.run(scenario())


def test_lifecycle_commands_and_role_elevation_refused(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    make_bridge()

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            claim = await hmi.command(cmd("stop", user="olga", role="engineer"))
            assert claim["status"] == "refused" and "may not act as" in claim["reason"]
            token = await hmi.command(cmd("stop", user="erik") | {"token": "guess"})
            assert token["status"] == "refused" and "token does not match" in token["reason"]
            stop = await hmi.command(cmd("stop", user="erik"))
            assert (stop["status"], stop["old"], stop["new"]) == ("accepted", "RUN", "STOP")
            await hmi.wait_for(f"{PREFIX}/state", lambda b: b["state"] == "STOP")
            reset = await hmi.command(cmd("reset", user="erik"))
            assert reset["status"] == "refused" and "FAULT" in reset["reason"]
            start = await hmi.command(cmd("start", user="erik"))
            assert start["status"] == "accepted"
            await hmi.wait_for(f"{PREFIX}/state", lambda b: b["state"] == "RUN")
            assert engine.state is RuntimeState.RUN

    asyncio.run(scenario())


def test_bad_payloads_are_answered_and_bridge_keeps_serving(
    make_bridge: BridgeFactory, broker: Broker
) -> None:
    bridge = make_bridge(max_command_bytes=4096)

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            cases = [
                (b"{not json", None, "malformed JSON"),
                (b"[1, 2]", None, "JSON object"),
                (b'{"id": "a", "cmd": 1}', "a", "invalid command"),
                (b'{"id": "b", "cmd": "explode", "user": "olga"}', "b", "invalid command"),
                (b'{"cmd": "stop", "user": "erik"}', None, "id: Field required"),
                (b'{"id": "c", "cmd": "stop", "user": "erik", "extra": 1}', "c", "unknown field"),
                (
                    b'{"id": "d", "cmd": "set_parameter", "user": "olga", "name": "gain", '
                    b'"value": NaN}',
                    "d",
                    "NaN is not valid JSON",
                ),
                (json.dumps({"id": "e", "pad": "x" * 5000}).encode(), None, "byte limit"),
            ]
            for i, (payload, _id, _reason) in enumerate(cases):
                await hmi.client.publish(f"{PREFIX}/cmd", payload, qos=1)
                n = i + 1
                await wait_until(lambda: len(hmi.on(RESP)) == n)  # noqa: B023 - awaited here
            answers = hmi.on(RESP)
            assert len(answers) == len(cases)
            for (_p, want_id, reason), answer in zip(cases, answers, strict=True):
                assert answer["status"] == "refused"
                assert answer["id"] == want_id, answer
                assert reason in answer["reason"], answer
            ok = await hmi.command(cmd("set_parameter", name="gain", value=3.0))
            assert ok["status"] == "accepted"

    asyncio.run(scenario())
    assert bridge.handler.refused == 8 and bridge.handler.accepted == 1


def test_every_command_is_audited_and_tampering_is_detected(
    make_bridge: BridgeFactory, broker: Broker, tmp_path: Path
) -> None:
    make_bridge()

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            await hmi.command(cmd("set_parameter", name="gain", value=5.0, reason="batch 42"))
            await hmi.command(cmd("force", user="olga", point="X", value=1.0))
            await hmi.command(cmd("set_parameter", name="gain", value=99.0))

    asyncio.run(scenario())
    path = tmp_path / "audit.jsonl"
    result = verify_audit_log(path)
    assert result.ok and result.records == 4  # trail_start (the key) + 3 commands
    records = [json.loads(line) for line in path.read_text().splitlines()][1:]
    first = records[0]
    assert (first["user"], first["role"], first["cmd"], first["target"]) == (
        "olga",
        "operator",
        "set_parameter",
        "gain",
    )
    assert (first["old"], first["new"], first["why"], first["status"]) == (
        2.0,
        5.0,
        "batch 42",
        "accepted",
    )
    assert records[1]["status"] == "refused" and "engineer" in records[1]["reason"]
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"new":5.0', '"new":4.0')  # someone "corrects" the record
    path.write_text("\n".join(lines) + "\n")
    broken = verify_audit_log(path)
    assert not broken.ok and broken.line == 2 and "signature" in broken.error

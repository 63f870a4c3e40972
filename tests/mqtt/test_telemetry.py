"""Telemetry against a real Mosquitto: birth/will, by-exception points, deadband, alarms, stats."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from hal import MemoryDriver
from runtime import ScanEngine
from tests.conftest import MakeApp
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import (
    APP_LOGIC,
    PREFIX,
    SITE,
    BridgeFactory,
    app_manifest,
    hmi_client,
)

ROOT = Path(__file__).resolve().parents[2]


def _mem(engine: ScanEngine) -> MemoryDriver:
    driver = engine.app.drivers["mem"]
    assert isinstance(driver, MemoryDriver)
    return driver


def test_birth_lists_points_and_clean_stop_publishes_offline(
    make_bridge: BridgeFactory, broker: Broker
) -> None:
    bridge = make_bridge()

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            birth = await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            assert birth["app"] == "testapp" and birth["app_version"] == "1.0.0"
            points = {p["name"]: p for p in birth["points"]}
            assert points["X"]["unit"] == "degC" and points["X"]["range"] == [-100, 100]
            assert points["RUNNING"]["type"] == "BOOL"
            assert birth["parameters"][0]["name"] == "gain"
            assert birth["alarms"] == ["main.high"] and birth["phases"] == ["main.phase"]
            state = await hmi.wait_for(f"{PREFIX}/state")
            assert state["state"] == "RUN" and "ts" in state and "t_app" in state
            mark = len(hmi.messages)
            await asyncio.to_thread(bridge.stop)
            # after the mark: a retained offline birth of an earlier test must not count
            bye = await hmi.wait_for(
                f"{PREFIX}/birth", lambda b: b["status"] == "offline", timeout=15, after=mark
            )
            assert bye["reason"] == "shutdown"

    asyncio.run(scenario())


def test_killed_bridge_leaves_retained_offline_will(make_app: MakeApp, broker: Broker) -> None:
    app_dir = make_app(app_manifest(), APP_LOGIC)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/mqtt/bridge_proc.py"),
            str(app_dir),
            str(broker.port),
            SITE,
            "killnode",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        prefix = f"vplc/{SITE}/killnode/testapp"

        async def scenario() -> None:
            async with hmi_client(broker.port, f"{prefix}/birth") as hmi:
                await hmi.wait_for(f"{prefix}/birth", lambda b: b["status"] == "online")
                mark = len(hmi.messages)
                proc.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the will
                will = await hmi.wait_for(
                    f"{prefix}/birth", lambda b: b["status"] == "offline", after=mark
                )
                assert will["reason"] == "connection lost"
                # Every retained value under the prefix is stale now; the scan's state is
                # unknown (a will cannot tell a dead runtime from a dead network).
                assert will["stale"] is True and will["state"] == "UNKNOWN"
                assert will["instance"]["pid"] == proc.pid
            # A late subscriber sees the retained will, not the stale birth.
            async with hmi_client(broker.port, f"{prefix}/birth") as late:
                body = await late.wait_for(f"{prefix}/birth")
                assert body["status"] == "offline"

        asyncio.run(scenario())
    finally:
        proc.kill()
        proc.wait(5)


def test_points_published_by_exception_with_deadband(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    mem = _mem(engine)
    make_bridge(deadband={"X": 0.5}, refresh_s=600)

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            x_topic, y_topic = f"{PREFIX}/points/X", f"{PREFIX}/points/Y"
            await hmi.wait_for(x_topic, lambda b: b["v"] == 0.0 and b["q"] == "GOOD")
            mem.values["x"] = 10.0
            await hmi.wait_for(y_topic, lambda b: b["v"] == 20.0)
            await asyncio.sleep(0.3)
            n_x, n_y = len(hmi.on(x_topic)), len(hmi.on(y_topic))
            await asyncio.sleep(0.3)  # nothing changes: nothing is published
            assert (len(hmi.on(x_topic)), len(hmi.on(y_topic))) == (n_x, n_y)
            mem.values["x"] = 10.3  # within X's deadband; Y (deadband 0) still changes
            await hmi.wait_for(y_topic, lambda b: abs(b["v"] - 20.6) < 1e-9)
            await asyncio.sleep(0.1)
            assert len(hmi.on(x_topic)) == n_x
            mem.values["x"] = 11.0
            body = await hmi.wait_for(x_topic, lambda b: b["v"] == 11.0)
            assert body["ts"].endswith("+00:00") and body["t_app"] > 0
            mem.qualities["x"] = mem.qualities["x"].__class__.BAD
            await hmi.wait_for(x_topic, lambda b: b["q"] == "BAD")

    asyncio.run(scenario())


def test_alarm_published_on_change_and_stats_report_queue(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    mem = _mem(engine)
    make_bridge()

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            topic = f"{PREFIX}/alarms/main.high"
            await hmi.wait_for(topic, lambda b: b["active"] is False)
            mem.values["x"] = 60.0
            body = await hmi.wait_for(topic, lambda b: b["active"] and b["unacked"])
            assert body["kinds"] == ["H"] and body["text"] == "X high"
            stats = await hmi.wait_for(f"{PREFIX}/stats")
            assert stats["engine"]["tasks"]["fast"]["cycles"] > 0
            assert stats["bridge"]["connected"] is True
            assert stats["bridge"]["queue"]["dropped"] == 0

    asyncio.run(scenario())


def test_full_queue_drops_are_counted_and_latest_value_still_arrives(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    mem = _mem(engine)
    bridge = make_bridge(queue_size=16, publish_ms=400, sample_ms=1)

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            await hmi.wait_for(f"{PREFIX}/birth")
            for i in range(40):  # more changes than the queue holds between two drains
                mem.values["x"] = float(i)
                await asyncio.sleep(0.012)
            await hmi.wait_for(f"{PREFIX}/points/X", lambda b: b["v"] == 39.0, timeout=5)
            assert bridge.tap.dropped > 0
            stats = await hmi.wait_for(f"{PREFIX}/stats", lambda s: s["bridge"]["queue"]["dropped"])
            assert stats["bridge"]["queue"]["dropped"] > 0

    asyncio.run(scenario())


def test_batch_mode_publishes_changed_points_in_one_message(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    mem = _mem(engine)
    make_bridge(point_messages="batch")

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            first = await hmi.wait_for(f"{PREFIX}/points", lambda b: "X" in b["points"])
            assert set(first["points"]) >= {"X", "Y", "RUNNING", "N"}  # the first full refresh
            mem.values["x"] = 7.0
            body = await hmi.wait_for(
                f"{PREFIX}/points", lambda b: "Y" in b["points"] and b["points"]["Y"]["v"] == 14.0
            )
            assert body["points"]["Y"]["q"] == "GOOD"
            # No per-point messages in batch mode (retained ones from earlier tests aside).
            assert all(kept for t, _, kept in hmi.messages if t == f"{PREFIX}/points/Y")

    asyncio.run(scenario())


def test_a_point_changing_between_drains_is_sent_once_with_its_latest_value(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    mem = _mem(engine)
    bridge = make_bridge(sample_ms=1, publish_ms=250, refresh_s=600, deadband={"X": 0.0})

    async def scenario() -> None:
        async with hmi_client(broker.port) as hmi:
            x_topic = f"{PREFIX}/points/X"
            await hmi.wait_for(x_topic, lambda b: not b.get("stale"))
            mark = len(hmi.messages)
            for i in range(1, 21):  # 20 changes, sampled every 10 ms cycle, in ~0.1 s
                mem.values["x"] = float(i)
                await asyncio.sleep(0.005)
            await hmi.wait_for(x_topic, lambda b: b["v"] == 20.0, after=mark, timeout=5)
            await asyncio.sleep(0.3)
            sent = [b["v"] for t, b, _ in hmi.messages[mark:] if t == x_topic]
            # One message per drain with the latest value, not one per sample.
            assert len(sent) < 10 and sent[-1] == 20.0 and sent == sorted(sent)

    asyncio.run(scenario())
    assert bridge.statistics()["coalesced"] >= 5

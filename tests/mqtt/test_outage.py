"""Broker outages: the scan never stops, the bridge reconnects, republishes and reports the gap."""

from __future__ import annotations

import asyncio
import time

from runtime import ScanEngine
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import PREFIX, BridgeFactory, hmi_client


def test_broker_restart_mid_run(
    make_bridge: BridgeFactory, own_broker: Broker, engine: ScanEngine
) -> None:
    bridge = make_bridge(port=own_broker.port, reconnect_min_s=0.1, reconnect_max_s=0.4)
    assert bridge.connected.wait(5)
    task = engine.tasks[0]

    cycles_before = task.stats.cycles
    own_broker.stop()
    samples = []
    for _ in range(10):  # 1.5 s without a broker
        time.sleep(0.15)
        samples.append(task.stats.cycles)
    assert not bridge.connected.is_set()
    assert samples == sorted(samples) and samples[-1] - cycles_before > 100  # 10 ms task
    own_broker.start()  # same port, empty: no persistence, so no retained birth survives

    async def scenario() -> None:
        async with hmi_client(own_broker.port) as hmi:
            birth = await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online", 10)
            assert birth["app"] == "testapp"
            await hmi.wait_for(f"{PREFIX}/points/Y")  # current values republished
            stats = await hmi.wait_for(
                f"{PREFIX}/stats", lambda s: s["bridge"]["connects"] >= 2, timeout=5
            )
            assert stats["bridge"]["last_outage_s"] >= 1.0
            assert stats["bridge"]["connected"] is True

    asyncio.run(scenario())
    assert task.stats.cycles > samples[-1]
    assert task.stats.overruns == 0 or task.stats.overruns < task.stats.cycles // 100
    assert bridge.statistics()["total_outage_s"] >= 1.0


def test_scan_runs_while_broker_was_never_reachable(
    make_bridge: BridgeFactory, engine: ScanEngine
) -> None:
    from tests.mqtt.broker import free_port

    bridge = make_bridge(port=free_port(), reconnect_min_s=0.05, reconnect_max_s=0.2)
    start = engine.tasks[0].stats.cycles
    time.sleep(0.8)
    stats = bridge.statistics()
    assert not stats["connected"] and stats["connect_failures"] >= 2
    assert "connection refused" in stats["last_error"]
    assert stats["connection"]["reason"] == "refused"
    assert engine.tasks[0].stats.cycles - start > 50

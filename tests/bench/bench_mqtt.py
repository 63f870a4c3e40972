"""MQTT figures (issue 5): telemetry throughput to a subscriber; 1 ms wake latency under load."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from runtime import ScanEngine, load_app
from runtime.mqtt import MqttBridge, MqttConfig
from tests.conftest import write_app
from tests.mqtt.broker import ensure_mosquitto, plain_broker

ROOT = Path(__file__).resolve().parents[2]

LOGIC = """
from runtime import Program

class Main(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.points = [app.point(f"P{i}") for i in range(N)]

    def execute(self, ctx):
        self.count += 1
        c = float(self.count)
        for p in self.points:
            p.value = c
"""

SUBSCRIBER = """
import asyncio, json, sys, time, aiomqtt

async def main(port, topic, seconds, batch):
    async with aiomqtt.Client("127.0.0.1", port, max_queued_incoming_messages=0) as c:
        await c.subscribe(topic)
        print("subscribed", flush=True)
        n, t0 = 0, None
        async for msg in c.messages:
            if t0 is None:
                t0 = time.monotonic()
            n += len(json.loads(msg.payload)["points"]) if batch else 1
            if time.monotonic() - t0 >= seconds:
                break
        print(n, time.monotonic() - t0, flush=True)

asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4] == "batch"))
"""


def _app(n_points: int, period_ms: float) -> Path:
    channels = {f"c{i}": "out" for i in range(n_points)}
    manifest = {
        "name": "benchapp",
        "version": "1.0.0",
        "drivers": {"mem": {"type": "memory", "options": {"channels": channels}}},
        "programs": [{"name": "main", "entry": "logic:Main"}],
        "tasks": [
            {"name": "fast", "period_ms": period_ms, "overrun": "skip", "programs": ["main"]}
        ],
        "points": [
            {
                "name": f"P{i}",
                "type": "LREAL",
                "direction": "out",
                "driver": "mem",
                "channel": f"c{i}",
                "safe": 0.0,
            }
            for i in range(n_points)
        ],
    }
    folder = Path(tempfile.mkdtemp(prefix="vplc-bench-mqtt-"))
    return write_app(folder / "app", manifest, f"N = {n_points}\n" + textwrap.dedent(LOGIC))


def _engine(n_points: int, period_ms: float) -> ScanEngine:
    engine = ScanEngine(load_app(_app(n_points, period_ms)))
    engine.start()
    engine.start_thread()
    return engine


def _bridge(engine: ScanEngine, port: int, sample_ms: float, mode: str = "each") -> MqttBridge:
    cfg = MqttConfig(
        port=port,
        site="bench",
        node="n1",
        sample_ms=sample_ms,
        stats_s=1,
        refresh_s=3600,
        queue_size=200_000,
        point_messages=mode,
    )
    bridge = MqttBridge(engine, cfg)
    bridge.start()
    if not bridge.connected.wait(10):
        raise RuntimeError(f"bridge did not connect: {bridge.statistics()}")
    return bridge


def _stop(engine: ScanEngine) -> None:
    engine.request_stop()
    engine.join(5)
    engine.close()


def throughput(port: int, mode: str, seconds: float = 4.0) -> dict[str, Any]:
    """1000 points changing every 10 ms cycle (100k updates/s offered) to one subscriber."""
    engine = _engine(1000, 10.0)
    topic = "vplc/bench/n1/benchapp/points" + ("" if mode == "batch" else "/#")
    sub = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, str(port), topic, str(seconds), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sub.stdout is not None
    sub.stdout.readline()
    bridge = _bridge(engine, port, 10.0, mode)
    t0 = time.monotonic()
    try:
        count, elapsed = sub.stdout.readline().split()
        published = bridge.statistics()["point_updates"] / (time.monotonic() - t0)
        sub.wait(10)
        stats = bridge.statistics()
    finally:
        bridge.stop()
        _stop(engine)
    rate = int(count) / float(elapsed)
    return {
        "point_messages": mode,
        "points": 1000,
        "offered_updates_per_s": 100_000,
        "published_updates_per_s": round(published),
        "delivered_updates_per_s": round(rate),
        "queue_dropped": stats["queue"]["dropped"],
        "scan_overruns": engine.tasks[0].stats.overruns,
    }


def latency(port: int, mode: str, seconds: float = 5.0) -> dict[str, Any]:
    """The 1 ms task's wake-latency p99 alone, then with 10 points × 1000/s = 10k updates/s."""
    engine = _engine(10, 1.0)
    task = engine.tasks[0]
    try:
        time.sleep(1.0)  # warm-up
        task.stats.reset()
        time.sleep(seconds)
        idle = task.stats.as_dict()
        bridge = _bridge(engine, port, 1.0, mode)
        time.sleep(1.0)
        task.stats.reset()
        published0 = bridge.statistics()["point_updates"]
        time.sleep(seconds)
        loaded = task.stats.as_dict()
        published = bridge.statistics()["point_updates"] - published0
        bridge.stop()
    finally:
        _stop(engine)
    p99_idle = idle["wake_latency_us"]["p99"]
    p99_loaded = loaded["wake_latency_us"]["p99"]
    return {
        "point_messages": mode,
        "period_ms": 1,
        "telemetry_updates_per_s": round(published / seconds),
        "wake_latency_us_idle": idle["wake_latency_us"],
        "wake_latency_us_loaded": loaded["wake_latency_us"],
        "p99_ratio_loaded_over_idle": round(p99_loaded / p99_idle, 2) if p99_idle else None,
        "overruns_idle": idle["overruns"],
        "overruns_loaded": loaded["overruns"],
        "skipped_idle": idle["skipped_releases"],
        "skipped_loaded": loaded["skipped_releases"],
    }


def run() -> dict[str, Any]:
    exe, _ = ensure_mosquitto()
    broker = plain_broker(exe, Path(tempfile.mkdtemp(prefix="vplc-bench-mosq-")))
    broker.start()
    try:
        return {
            "throughput_each": throughput(broker.port, "each"),
            "throughput_batch": throughput(broker.port, "batch"),
            "latency_each": latency(broker.port, "each"),
            "latency_batch": latency(broker.port, "batch"),
        }
    finally:
        broker.stop()


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

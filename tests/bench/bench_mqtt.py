"""MQTT figures (issue 5): throughput; 1 ms wake latency with the bridge in or out of process."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from runtime import ScanEngine, load_app
from runtime.mqtt import MqttBridge, MqttConfig, ProcessBridge
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


def _bridge(
    engine: ScanEngine, port: int, sample_ms: float, mode: str = "each", process: bool = False
) -> MqttBridge | ProcessBridge:
    cfg = MqttConfig(
        port=port,
        site="bench",
        node="n1",
        sample_ms=sample_ms,
        stats_s=1,
        refresh_s=3600,
        queue_size=200_000,
        point_messages=mode,
        process=process,
    )
    bridge = ProcessBridge(engine, cfg) if process else MqttBridge(engine, cfg)
    bridge.start()
    if not bridge.connected.wait(20):
        raise RuntimeError(f"bridge did not connect: {bridge.statistics()}")
    return bridge


def _stop(engine: ScanEngine) -> None:
    engine.request_stop()
    engine.join(5)
    engine.close()


def throughput(port: int, mode: str, process: bool, seconds: float = 4.0) -> dict[str, Any]:
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
    bridge = _bridge(engine, port, 10.0, mode, process)
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
        "bridge": "process" if process else "thread",
        "point_messages": mode,
        "points": 1000,
        "offered_updates_per_s": 100_000,
        "published_updates_per_s": round(published),
        "delivered_updates_per_s": round(rate),
        "queue_dropped": stats["queue"]["dropped"],
        "scan_overruns": engine.tasks[0].stats.overruns,
    }


def _window(task: Any, seconds: float) -> dict[str, Any]:
    task.stats.reset()
    time.sleep(seconds)
    return dict(task.stats.as_dict())


def latency(port: int, mode: str, seconds: float = 5.0) -> dict[str, Any]:
    """The 1 ms task's wake latency alone, then with 10 points × 1000/s = 10k updates/s
    published by the bridge in a thread of the scan's process, then by the bridge in its own
    process: back to back on one engine, so the ratios share the machine's load."""
    engine = _engine(10, 1.0)
    task = engine.tasks[0]
    out: dict[str, Any] = {"point_messages": mode, "period_ms": 1}
    try:
        time.sleep(1.0)  # warm-up
        idle = _window(task, seconds)
        out["idle"] = _summary(idle, None)
        for name, process in (("in_process", False), ("out_of_process", True)):
            bridge = _bridge(engine, port, 1.0, mode, process)
            time.sleep(1.5)  # the child's first statistics arrive after 0.5 s
            published0 = bridge.statistics()["point_updates"]
            loaded = _window(task, seconds)
            time.sleep(0.6)  # ProcessBridge statistics are up to 0.5 s old
            published = bridge.statistics()["point_updates"] - published0
            bridge.stop()
            row = _summary(loaded, round(published / (seconds + 0.6)))
            p50, p99 = idle["wake_latency_us"]["p50"], idle["wake_latency_us"]["p99"]
            row["p50_ratio_over_idle"] = round(row["wake_latency_us"]["p50"] / p50, 2)
            row["p99_ratio_over_idle"] = round(row["wake_latency_us"]["p99"] / p99, 2)
            out[name] = row
    finally:
        _stop(engine)
    return out


def _summary(stats: dict[str, Any], updates_per_s: int | None) -> dict[str, Any]:
    return {
        "telemetry_updates_per_s": updates_per_s,
        "wake_latency_us": stats["wake_latency_us"],
        "overruns": stats["overruns"],
        "skipped": stats["skipped_releases"],
    }


def run() -> dict[str, Any]:
    exe, _ = ensure_mosquitto()
    broker = plain_broker(exe, Path(tempfile.mkdtemp(prefix="vplc-bench-mosq-")))
    broker.start()
    try:
        return {
            "latency_each": latency(broker.port, "each"),
            "latency_batch": latency(broker.port, "batch"),
            "throughput_each_thread": throughput(broker.port, "each", False),
            "throughput_each_process": throughput(broker.port, "each", True),
            "throughput_batch_thread": throughput(broker.port, "batch", False),
            "throughput_batch_process": throughput(broker.port, "batch", True),
        }
    finally:
        broker.stop()


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

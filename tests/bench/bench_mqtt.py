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
from tests.bench._util import bench_broker
from tests.conftest import write_app

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
import json, sys, threading, time
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

port, topic, seconds, batch = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
state = {"n": 0, "t0": None}
done = threading.Event()

def on_message(client, userdata, msg):
    if msg.retain:
        return  # only what arrives live counts as delivered
    if state["t0"] is None:
        state["t0"] = time.monotonic()
    state["n"] += len(json.loads(msg.payload)["points"]) if batch == "batch" else 1
    if time.monotonic() - state["t0"] >= seconds:
        done.set()

c = paho.Client(CallbackAPIVersion.VERSION2)
c.on_message = on_message
c.connect("127.0.0.1", port)
c.subscribe(topic)
c.loop_start()
print("subscribed", flush=True)
done.wait(seconds + 30)
c.loop_stop()
print(state["n"], time.monotonic() - (state["t0"] or time.monotonic()), flush=True)
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


def _engine(n_points: int, period_ms: float, realtime: bool = False) -> ScanEngine:
    engine = ScanEngine(load_app(_app(n_points, period_ms)))
    if realtime:  # DESIGN.md §3's best row: SCHED_FIFO, sleep to 200 µs before, then spin
        engine.set_realtime(fifo_priority=50, spin_us=200)
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


class _Subscriber:
    """An HMI in its own process (paho) counting the updates delivered live on a topic."""

    def __init__(self, port: int, mode: str, seconds: float) -> None:
        topic = "vplc/bench/n1/benchapp/points" + ("" if mode == "batch" else "/#")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER, str(port), topic, str(seconds), mode],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # subscribed

    def rate(self) -> float:
        assert self.proc.stdout is not None
        count, elapsed = self.proc.stdout.readline().split()
        self.proc.wait(10)
        return int(count) / float(elapsed) if float(elapsed) > 0 else 0.0


def throughput(port: int, mode: str, process: bool, seconds: float = 4.0) -> dict[str, Any]:
    """1000 points changing every 10 ms cycle (100k updates/s offered) to one subscriber."""
    engine = _engine(1000, 10.0)
    sub = _Subscriber(port, mode, seconds)
    bridge = _bridge(engine, port, 10.0, mode, process)
    t0 = time.monotonic()
    try:
        rate = sub.rate()
        published = bridge.statistics()["point_updates"] / (time.monotonic() - t0)
        stats = bridge.statistics()
    finally:
        bridge.stop()
        _stop(engine)
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


def scan_latency(
    port: int, mode: str, n_points: int, seconds: float = 5.0, realtime: bool = False
) -> dict[str, Any]:
    """The 1 ms task's wake latency with ``n_points`` changing every cycle (n_points × 1000
    updates/s offered, sampled every 1 ms) published by the bridge in a thread of the scan's
    process, then by the bridge in its own process, each with an HMI subscriber counting what
    is delivered. Each loaded window follows an idle window of the same engine, and its ratio
    is over that idle window: other load on the machine changes slowly, so the ratio shows
    what the bridge adds."""
    engine = _engine(n_points, 1.0, realtime)
    task = engine.tasks[0]
    out: dict[str, Any] = {
        "scan": "SCHED_FIFO 50 + spin 200 us" if realtime else "default scheduling",
        "point_messages": mode,
        "period_ms": 1,
        "offered_updates_per_s": n_points * 1000,
    }
    try:
        time.sleep(1.0)  # warm-up
        for name, process in (("in_process", False), ("out_of_process", True)):
            idle = _window(task, seconds)
            bridge = _bridge(engine, port, 1.0, mode, process)
            time.sleep(1.5)  # the child's first statistics arrive after 0.5 s
            sub = _Subscriber(port, mode, seconds)
            stats0 = bridge.statistics()
            loaded = _window(task, seconds)
            delivered = sub.rate()
            time.sleep(0.6)  # ProcessBridge statistics are up to 0.5 s old
            stats = bridge.statistics()
            bridge.stop()
            span = seconds + 0.6
            published = (stats["point_updates"] - stats0["point_updates"]) / span
            coalesced = (stats["coalesced"] - stats0["coalesced"]) / span
            row = _summary(loaded, round(published), round(delivered))
            row["coalesced_per_s"] = round(coalesced)
            row["queue_dropped"] = stats["queue"]["dropped"]
            row["idle_before"] = _summary(idle, None, None)
            p99_idle = max(idle["wake_latency_us"]["p99"], 1.0)
            row["p99_ratio_over_idle"] = round(row["wake_latency_us"]["p99"] / p99_idle, 2)
            out[name] = row
    finally:
        _stop(engine)
    return out


def _summary(stats: dict[str, Any], published: int | None, delivered: int | None) -> dict[str, Any]:
    return {
        "published_updates_per_s": published,
        "delivered_updates_per_s": delivered,
        "wake_latency_us": stats["wake_latency_us"],
        "overruns": stats["overruns"],
        "skipped": stats["skipped_releases"],
    }


def run() -> dict[str, Any]:
    with bench_broker() as broker:
        result: dict[str, Any] = {"default_bridge": _default_mode()}
        for mode in ("each", "batch"):
            for n in (10, 50):
                result[f"latency_{mode}_{n}k"] = scan_latency(broker.port, mode, n)
            # As a deployment runs it where the OS permits (DESIGN.md §3): the figures of
            # what the bridge itself costs the scan, above the machine's other load.
            result[f"latency_{mode}_50k_fifo"] = scan_latency(broker.port, mode, 50, realtime=True)
        for mode in ("each", "batch"):
            for process in (False, True):
                where = "process" if process else "thread"
                result[f"throughput_{mode}_{where}"] = throughput(broker.port, mode, process)
        return result


def _default_mode() -> str:
    return "process" if MqttConfig(site="s", node="n").process else "thread"


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

"""Sparkplug B figures (issue 18): metrics/s delivered; the 1 ms scan's p99 with the node on."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runtime import ScanEngine
from runtime.mqtt import MqttConfig
from runtime.sparkplug import SparkplugNode
from tests.bench._util import bench_broker
from tests.bench.bench_mqtt import _engine, _stop, _summary, _window

ROOT = Path(__file__).resolve().parents[2]
DDATA = "spBv1.0/bench/DDATA/n1/benchapp"

# A host in its own process: counts the metrics of the DDATA messages delivered live (decoded
# with the same generated protobuf module; the tests check it against Tahu's codec).
SUBSCRIBER = """
import sys, threading, time
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from runtime.sparkplug._payload import Payload

port, topic, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
state = {"n": 0, "msgs": 0, "t0": None, "bad_seq": 0, "last": None}
done = threading.Event()

def on_message(client, userdata, msg):
    if state["t0"] is None:
        state["t0"] = time.monotonic()
    p = Payload()
    p.ParseFromString(msg.payload)
    if state["last"] is not None and p.seq != (state["last"] + 1) % 256:
        state["bad_seq"] += 1
    state["last"] = p.seq
    state["n"] += len(p.metrics)
    state["msgs"] += 1
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
elapsed = time.monotonic() - (state["t0"] or time.monotonic())
print(state["n"], state["msgs"], state["bad_seq"], elapsed, flush=True)
"""


class _Host:
    def __init__(self, port: int, seconds: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER, str(port), DDATA, str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # subscribed

    def result(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        n, msgs, bad_seq, elapsed = self.proc.stdout.readline().split()
        self.proc.wait(10)
        span = float(elapsed) or 1.0
        return {
            "delivered_metrics_per_s": round(int(n) / span),
            "ddata_per_s": round(int(msgs) / span, 1),
            "seq_gaps": int(bad_seq),
        }


def _node(engine: ScanEngine, port: int, sample_ms: float, publish_ms: float) -> SparkplugNode:
    cfg = MqttConfig(
        port=port,
        sample_ms=sample_ms,
        publish_ms=publish_ms,
        stats_s=1,
        sparkplug={
            "group_id": "bench",
            "edge_node_id": "n1",
            "bdseq_file": str(Path(tempfile.mkdtemp(prefix="vplc-bench-spb-")) / "bdseq"),
        },
    )
    node = SparkplugNode(engine, cfg)
    node.start()
    if not node.wait_connected(20):
        raise RuntimeError(f"the edge node did not connect: {node.statistics()}")
    return node


def throughput(port: int, seconds: float = 4.0) -> dict[str, Any]:
    """1000 LREAL points changing every 10 ms cycle (100k metric updates/s offered), one
    DDATA per publish period (20 ms) with every changed metric, to one host."""
    engine = _engine(1000, 10.0)
    try:
        node = _node(engine, port, 10.0, 20.0)
        time.sleep(1.0)
        host = _Host(port, seconds)
        row = host.result()
        stats = node.statistics().get("sparkplug", {})
        node.stop()
    finally:
        _stop(engine)
    return {
        "points": 1000,
        "offered_metric_updates_per_s": 100_000,
        **row,
        "ddata_published": stats.get("ddata"),
        "scan_overruns": engine.tasks[0].stats.overruns,
    }


def scan_latency(port: int, n_points: int, seconds: float = 5.0) -> dict[str, Any]:
    """The 1 ms task's wake latency with ``n_points`` changing every cycle, sampled every 1 ms
    and published every 10 ms by the node, against an idle window of the same engine just
    before (other load on the machine changes slowly, so the ratio shows what the node adds)."""
    engine = _engine(n_points, 1.0)
    task = engine.tasks[0]
    try:
        time.sleep(1.0)  # warm-up
        idle = _window(task, seconds)
        node = _node(engine, port, 1.0, 10.0)
        time.sleep(1.0)
        host = _Host(port, seconds)
        loaded = _window(task, seconds)
        delivered = host.result()
        node.stop()
    finally:
        _stop(engine)
    row = _summary(loaded, None, delivered["delivered_metrics_per_s"])
    row["offered_metric_updates_per_s"] = n_points * 1000
    row["ddata_per_s"] = delivered["ddata_per_s"]
    row["idle_before"] = _summary(idle, None, None)
    p99_idle = max(idle["wake_latency_us"]["p99"], 1.0)
    row["p99_ratio_over_idle"] = round(row["wake_latency_us"]["p99"] / p99_idle, 2)
    return row


def run() -> dict[str, Any]:
    with bench_broker() as broker:
        return {
            "throughput_1000_points": throughput(broker.port),
            "latency_10k": scan_latency(broker.port, 10),
            "latency_50k": scan_latency(broker.port, 50),
        }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

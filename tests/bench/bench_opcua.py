"""OPC UA figures (issue 16): what the server costs the scan with 5,000 monitored items at
100 ms and how many notifications/s it delivers; the `opcua` client driver's end-to-end
latency from a server-side change to the process image with 1,000 subscribed points."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runtime import load_app
from runtime.host import Realtime, Runtime
from runtime.opcua import OpcuaConfig
from tests.bench._util import scan_window
from tests.conftest import write_app
from tests.mqtt.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
N_SERVED = 5000
N_CLIENT = 1000
SAMPLE_MS = 100.0
SCAN_MS = 10.0
WINDOW_S = 10.0
CHANGED_PER_CYCLE = 50  # 5,000 changes/s offered: every point changes once a second

# A SCADA client in its own process: one subscription (100 ms) over every point, SignAndEncrypt.
SUBSCRIBER = """
import asyncio, socket, sys, tempfile, time
from pathlib import Path
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.x509.oid import ExtendedKeyUsageOID

async def main(url, n, seconds):
    d = Path(tempfile.mkdtemp())
    key, cert = d / "k.pem", d / "c.der"
    await setup_self_signed_certificate(key, cert, "urn:bench:scada", socket.gethostname(),
        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "bench"})
    client = Client(url, timeout=30)
    client.application_uri = "urn:bench:scada"
    await client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key))
    async with client:
        idx = await client.get_namespace_index("urn:vplc:benchopcua")
        sub = await client.create_subscription(SAMPLE_MS_, None, queue_maxsize=1_000_000)
        nodes = [client.get_node(ua.NodeId(f"Points.P{i}", idx)) for i in range(n)]
        for k in range(0, n, 1000):
            await sub.subscribe_data_change(nodes[k:k + 1000], sampling_interval=SAMPLE_MS_)
        print("subscribed", flush=True)
        count, t0 = 0, None
        while True:
            ev = await sub.next_event(timeout=1.0)
            if ev is None:
                continue
            if t0 is None:
                await asyncio.sleep(2.0)  # the initial values, then the steady state
                while not sub._event_queue.empty():
                    sub._event_queue.get_nowait()
                t0 = time.monotonic()
                continue
            count += 1
            if time.monotonic() - t0 >= seconds:
                break
        print(count / (time.monotonic() - t0), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
""".replace("SAMPLE_MS_", repr(SAMPLE_MS))

# A field device in its own process: N float variables, each set every 100 ms to the wall
# time of the write, so the scan side can tell how old the value it latched is.
DEVICE = """
import asyncio, sys, tempfile, time
from pathlib import Path
from hal.opcua import VariableServer, VarSpec

async def main(port, n):
    specs = [VarSpec(f"v{i}", "float") for i in range(n)]
    server = VariableServer(endpoint=f"opc.tcp://127.0.0.1:{port}/dev",
        namespace_uri="urn:bench:device", folder="dev", variables=specs,
        pki_dir=Path(tempfile.mkdtemp()), policies=["Basic256Sha256"])
    await server.start()
    print("up", flush=True)
    period, deadline = SAMPLE_MS_ / 1000, time.monotonic()
    while True:
        for i in range(n):
            await server.set(f"v{i}", time.time())
        deadline += period
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
""".replace("SAMPLE_MS_", repr(SAMPLE_MS))

LOGIC_OUT = """
from runtime import Program

class Main(Program):
    def __init__(self, app):
        super().__init__(app)
        self.points = [app.point(f"P{i}") for i in range(N)]
        self.k = 0

    def execute(self, ctx):
        pts, k = self.points, self.k
        for j in range(CHANGED):
            p = pts[(k + j) % N]
            p.value = p.value + 1.0
        self.k = (k + CHANGED) % N
"""

LOGIC_IN = """
from runtime import Program

class Main(Program):
    def __init__(self, app):
        super().__init__(app)
        self.points = [app.point(f"P{i}") for i in range(N)]

    def execute(self, ctx):
        for p in self.points:
            p.value
"""


def _app(name: str, driver: dict[str, Any], n: int, direction: str, logic: str) -> Path:
    manifest = {
        "name": name,
        "version": "1.0.0",
        "drivers": {"io": driver},
        "programs": [{"name": "main", "entry": "logic:Main"}],
        "tasks": [{"name": "fast", "period_ms": SCAN_MS, "overrun": "skip", "programs": ["main"]}],
        "points": [
            {
                "name": f"P{i}",
                "type": "LREAL",
                "direction": direction,
                "driver": "io",
                "channel": f"c{i}",
                **({"safe": 0.0} if direction == "out" else {}),
            }
            for i in range(n)
        ],
    }
    folder = Path(tempfile.mkdtemp(prefix="vplc-bench-opcua-"))
    consts = f"N = {n}\nCHANGED = {CHANGED_PER_CYCLE}\n"
    return write_app(folder / "app", manifest, consts + logic)


def _ratio(loaded: dict[str, Any], idle: dict[str, Any], key: str) -> float:
    return round(loaded[key]["p99"] / max(idle[key]["p99"], 1.0), 2)


def server_monitored_items() -> dict[str, Any]:
    memory = {"type": "memory", "options": {"channels": {f"c{i}": "out" for i in range(N_SERVED)}}}
    app_dir = _app("benchopcua", memory, N_SERVED, "out", LOGIC_OUT)
    state = Path(tempfile.mkdtemp(prefix="vplc-bench-opcua-state-"))
    port = free_port()
    config = OpcuaConfig.model_validate({
        "host": "127.0.0.1", "port": port, "anonymous": True, "trust_all_clients": True,
        "pki_dir": str(state), "sample_ms": SAMPLE_MS, "max_message_bytes": 64 * 1024 * 1024,
    })  # fmt: skip
    # The scan as `vplc run` starts it: the real-time settings the OS permits (FIFO, pinning).
    idle_rt = Runtime(load_app(app_dir), realtime=Realtime(auto=True))
    idle_rt.start(thread=True)
    try:
        time.sleep(1.0)
        idle = scan_window(idle_rt.engine, WINDOW_S)
    finally:
        idle_rt.stop_thread(5)
        idle_rt.close()
    runtime = Runtime(load_app(app_dir), opcua=config, realtime=Realtime(auto=True))
    runtime.start(thread=True)
    sub = None
    try:
        _wait_listening(port, 120.0)  # the server process up (5,000 nodes take a while)
        url = f"opc.tcp://127.0.0.1:{port}/vplc"
        cmd = [sys.executable, "-c", SUBSCRIBER, url, str(N_SERVED), str(WINDOW_S)]
        sub = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert sub.stdout is not None
        first = sub.stdout.readline().strip()
        assert first == "subscribed", first
        time.sleep(2.5)
        loaded = scan_window(runtime.engine, WINDOW_S)
        out, _ = sub.communicate(timeout=WINDOW_S + 120)
    finally:
        if sub is not None and sub.poll() is None:
            sub.kill()
        runtime.stop_thread(5)
        runtime.close()
    return {
        "monitored_items": N_SERVED,
        "sample_ms": SAMPLE_MS,
        "security": "Basic256Sha256 SignAndEncrypt",
        "changes_offered_per_s": round(CHANGED_PER_CYCLE * 1000 / SCAN_MS),
        "notifications_delivered_per_s": round(float(out.strip().splitlines()[-1])),
        "scan_period_ms": SCAN_MS,
        "scan_without_server": idle,
        "scan_with_server_and_subscriber": loaded,
        "scan_wake_p99_ratio_over_idle": _ratio(loaded, idle, "wake_latency_us"),
        "scan_exec_p99_ratio_over_idle": _ratio(loaded, idle, "exec_us"),
    }


def _wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"no OPC UA server on port {port} after {timeout} s")


def _pct(values: list[float], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else 0.0


def client_driver_latency() -> dict[str, Any]:
    port = free_port()
    device = subprocess.Popen([sys.executable, "-c", DEVICE, str(port), str(N_CLIENT)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    try:
        assert device.stdout is not None
        assert device.stdout.readline().strip() == "up"
        channels = {f"c{i}": f"nsu=urn:bench:device;s=v{i}" for i in range(N_CLIENT)}
        opts = {"endpoint": f"opc.tcp://127.0.0.1:{port}/dev", "channels": channels,
                "sampling_ms": SAMPLE_MS, "open_wait_s": 20.0, "timeout_s": 5.0}  # fmt: skip
        app = load_app(_app("benchopcuaclient", {"type": "opcua", "options": opts},
                            N_CLIENT, "in", LOGIC_IN))  # fmt: skip
        image = app.image
        seen = [0.0] * N_CLIENT
        ages_ms: list[float] = []
        recording = [False]

        def hook(task: Any, now_ns: int) -> None:
            if not recording[0]:
                return
            wall = time.time()
            for i, p in enumerate(image.points):
                v = p.value
                if v != seen[i]:
                    seen[i] = v
                    ages_ms.append((wall - v) * 1e3)

        runtime = Runtime(app, hooks=[hook])
        runtime.start(thread=True)
        try:
            time.sleep(2.0)
            for i, p in enumerate(image.points):
                seen[i] = p.value
            recording[0] = True
            window = scan_window(runtime.engine, WINDOW_S)
            recording[0] = False
            driver: Any = app.drivers["io"]
            link_ms = sorted(n / 1e6 for n in driver.link.latency_ns)
            stats = driver.statistics()
        finally:
            runtime.stop_thread(5)
            runtime.close()
    finally:
        device.kill()
        device.wait(5)
    ages_ms.sort()
    return {
        "points": N_CLIENT,
        "sampling_and_publishing_ms": SAMPLE_MS,
        "security": "Basic256Sha256 SignAndEncrypt",
        "scan_period_ms": SCAN_MS,
        "changes_seen": len(ages_ms),
        "change_to_process_image_ms": {
            "p50": _pct(ages_ms, 0.5),
            "p99": _pct(ages_ms, 0.99),
            "mean": round(statistics.fmean(ages_ms), 2) if ages_ms else 0.0,
        },
        "source_timestamp_to_driver_thread_ms": {
            "p50": _pct(link_ms, 0.5),
            "p99": _pct(link_ms, 0.99),
        },
        "notifications": stats.get("notifications"),
        "stale_events": stats.get("stale_events"),
        "scan": window,
    }


def run() -> dict[str, Any]:
    return {
        "server_5000_monitored_items": server_monitored_items(),
        "client_driver_1000_points": client_driver_latency(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

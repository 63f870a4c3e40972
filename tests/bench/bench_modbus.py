"""Modbus figures (issue 18): the `modbus` driver polling 2,000 registers every 100 ms (poll
cycle p50/p99, what it costs the scan), and the runtime's Modbus server in requests/s."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runtime import load_app
from runtime.host import Runtime
from runtime.modbus import ModbusServerConfig
from tests.bench._util import scan_window
from tests.conftest import write_app
from tests.drivers.modbus_device import free_port

ROOT = Path(__file__).resolve().parents[2]
N_REGISTERS = 2000
POLL_MS = 100.0
SCAN_MS = 10.0
WINDOW_S = 10.0

# The device: hal.modbus's server over 2,000 input registers in a process of its own, so
# what is measured is the client side (the scan's process), not the device.
DEVICE = """
import asyncio, sys
from hal.modbus import ModbusTcpServer, ModbusRefusedError

class Bank:
    def read(self, table, address, count, unit):
        if address + count > 4000:
            raise ModbusRefusedError(2)
        return [(address + i) & 0xFFFF for i in range(count)]
    def write(self, table, address, values, unit, peer):
        return None

async def main():
    await ModbusTcpServer(Bank(), port=int(sys.argv[1])).serve(asyncio.Event())
asyncio.run(main())
"""

# A SCADA poller in its own process: 125 registers per request, as fast as answers come.
POLLER = """
import sys, time
from pymodbus.client import ModbusTcpClient
c = ModbusTcpClient("127.0.0.1", port=int(sys.argv[1]), timeout=2)
c.connect()
n, t0 = 0, time.monotonic()
while time.monotonic() - t0 < float(sys.argv[2]):
    rr = c.read_holding_registers(0, count=125, device_id=1)
    assert not rr.isError(), rr
    n += 1
print(n / (time.monotonic() - t0), flush=True)
"""

LOGIC = """
from runtime import Program

class Main(Program):
    def __init__(self, app):
        super().__init__(app)
        self.points = [app.point(f"R{i}") for i in range(N)]

    def execute(self, ctx):
        total = 0
        for p in self.points:
            total += p.value
"""


def _app(driver: dict[str, Any], n: int) -> Path:
    manifest = {
        "name": "benchmodbus",
        "version": "1.0.0",
        "drivers": {"io": driver},
        "programs": [{"name": "main", "entry": "logic:Main"}],
        "tasks": [{"name": "fast", "period_ms": SCAN_MS, "overrun": "skip", "programs": ["main"]}],
        "points": [
            {"name": f"R{i}", "type": "DINT", "direction": "in", "driver": "io", "channel": f"r{i}"}
            for i in range(n)
        ],
        "parameters": [
            {"name": f"p{i}", "type": "REAL", "default": float(i), "min": -1e6, "max": 1e6}
            for i in range(63)
        ],
    }
    folder = Path(tempfile.mkdtemp(prefix="vplc-bench-modbus-"))
    return write_app(folder / "app", manifest, f"N = {n}\n" + LOGIC)


def _scan(driver: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    app = load_app(_app(driver, N_REGISTERS))
    runtime = Runtime(app)
    runtime.start(thread=True)
    try:
        time.sleep(1.0)  # warm-up
        window = scan_window(runtime.engine, WINDOW_S)
        link = getattr(app.drivers["io"], "link", None)
        cycles = sorted(link.cycle_ns["default"]) if link is not None else []
        stats = app.drivers["io"].statistics() if link is not None else {}  # type: ignore[attr-defined]
    finally:
        runtime.stop_thread(5)
        runtime.close()
    return window, (cycles, stats)


def _pct(values: list[int], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))] / 1e6, 3) if values else 0.0


def client_poll() -> dict[str, Any]:
    port = free_port()
    device = subprocess.Popen([sys.executable, "-c", DEVICE, str(port)], cwd=ROOT)
    try:
        time.sleep(1.5)
        channels = {f"r{i}": f"input:{i}:uint16" for i in range(N_REGISTERS)}
        memory = {"type": "memory", "options": {"channels": dict.fromkeys(channels, "in")}}
        idle, _ = _scan(memory)  # the same 2,000 inputs latched from memory: no network
        opts = {"host": "127.0.0.1", "port": port, "poll_ms": POLL_MS, "channels": channels}
        loaded, (cycles, stats) = _scan({"type": "modbus", "options": opts})
    finally:
        device.kill()
        device.wait(5)
    ratio_wake = loaded["wake_latency_us"]["p99"] / max(idle["wake_latency_us"]["p99"], 1.0)
    ratio_exec = loaded["exec_us"]["p99"] / max(idle["exec_us"]["p99"], 1.0)
    return {
        "registers": N_REGISTERS,
        "poll_ms": POLL_MS,
        "requests_per_poll": -(-N_REGISTERS // 125),
        "poll_cycles": len(cycles),
        "poll_cycle_ms": {
            "p50": _pct(cycles, 0.5),
            "p99": _pct(cycles, 0.99),
            "mean": round(statistics.fmean(cycles) / 1e6, 3) if cycles else 0,
        },
        "read_errors": stats.get("read_errors"),
        "scan_period_ms": SCAN_MS,
        "scan_idle_memory_driver": idle,
        "scan_with_modbus_polling": loaded,
        "scan_wake_p99_ratio_over_idle": round(ratio_wake, 2),
        "scan_exec_p99_ratio_over_idle": round(ratio_exec, 2),
    }


def server_requests(seconds: float = 5.0) -> dict[str, Any]:
    """One SCADA poller reading 125 holding registers (63 float32 parameters) in a loop."""
    app = load_app(_app({"type": "memory", "options": {"channels": {"r0": "in"}}}, 1))
    port = free_port()
    entries = [{"parameter": f"p{i}", "table": "holding", "address": 2 * i} for i in range(62)]
    entries.append({"point": "R0", "table": "holding", "address": 124, "type": "int16"})
    config = ModbusServerConfig.model_validate({"port": port, "map": entries})
    runtime = Runtime(app, modbus=config)
    runtime.start(thread=True)
    try:
        time.sleep(0.5)
        idle = scan_window(runtime.engine, seconds)
        poller = subprocess.Popen([sys.executable, "-c", POLLER, str(port), str(seconds)],
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
        loaded = scan_window(runtime.engine, seconds)
        out, _ = poller.communicate(timeout=seconds + 30)
    finally:
        runtime.stop_thread(5)
        runtime.close()
    return {
        "registers_per_request": 125,
        "requests_per_s": round(float(out.strip())),
        "scan_period_ms": SCAN_MS,
        "scan_wake_p99_ratio_over_idle": round(
            loaded["wake_latency_us"]["p99"] / max(idle["wake_latency_us"]["p99"], 1.0), 2
        ),
        "scan_idle": idle,
        "scan_while_served": loaded,
    }


def run() -> dict[str, Any]:
    return {"client_2000_registers": client_poll(), "server": server_requests()}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

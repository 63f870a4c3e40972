"""A small app running in real time with the Modbus server attached (a real TCP port)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from runtime import load_app
from runtime.host import Runtime
from runtime.modbus import ModbusServerConfig
from tests.conftest import COPY_LOGIC, memory_manifest, write_app
from tests.drivers.modbus_device import free_port

MAP: list[dict[str, Any]] = [
    {"point": "X", "table": "input", "address": 0, "type": "float32"},
    {"point": "Y", "table": "input", "address": 2, "type": "float64"},
    {"point": "X", "table": "holding", "address": 0, "type": "float32"},  # read-only too
    {"parameter": "gain", "table": "holding", "address": 10, "type": "float32"},
    {"parameter": "limit", "table": "holding", "address": 12, "type": "int16"},
    {"parameter": "enable", "table": "coil", "address": 0},
    {"parameter": "gain", "table": "holding", "address": 20, "type": "int16", "scale": 100},
]


def app_dir(tmp_path: Path) -> Path:
    manifest = memory_manifest()
    manifest["parameters"] += [
        {"name": "limit", "type": "DINT", "default": 5, "min": 0, "max": 1000},
        {"name": "enable", "type": "BOOL", "default": False},
    ]
    return write_app(tmp_path / "app", manifest, COPY_LOGIC)


Served = Callable[..., tuple[Runtime, ModbusTcpClient]]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """Start the app with a Modbus config (``writes`` etc. as keyword overrides)."""
    started: list[tuple[Runtime, ModbusTcpClient]] = []

    def start(**overrides: Any) -> tuple[Runtime, ModbusTcpClient]:
        app = load_app(app_dir(tmp_path))
        app.drivers["mem"].values["x"] = 1.5  # type: ignore[attr-defined]
        body = {"port": free_port(), "map": MAP} | overrides
        runtime = Runtime(app, modbus=ModbusServerConfig.model_validate(body))
        runtime.start(thread=True)
        client = ModbusTcpClient("127.0.0.1", port=body["port"], timeout=2, retries=0)
        assert client.connect()
        started.append((runtime, client))
        return runtime, client

    yield start
    for runtime, client in started:
        client.close()
        runtime.stop_thread(5)
        runtime.close()

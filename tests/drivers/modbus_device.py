"""A Modbus TCP device for tests: pymodbus' own server (an implementation independent of ours).

In-process on its own thread (tests set and read its tables), or as a child process that a
test can freeze with SIGSTOP: the kernel still accepts the connection and the bytes, but no
answer ever comes back, which is what a hung device looks like on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus.server import ModbusTcpServer

__all__ = ["ChildDevice", "PyModbusDevice", "free_port"]

_FC = {"coil": 1, "discrete_input": 2, "holding": 3, "input": 4}
SIZE = 4096


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _context(units: Sequence[int]) -> ModbusServerContext:
    def dev() -> ModbusDeviceContext:
        return ModbusDeviceContext(
            di=ModbusSequentialDataBlock(1, [False] * SIZE),
            co=ModbusSequentialDataBlock(1, [False] * SIZE),
            hr=ModbusSequentialDataBlock(1, [0] * SIZE),
            ir=ModbusSequentialDataBlock(1, [0] * SIZE),
        )

    return ModbusServerContext(devices={u: dev() for u in units})


class PyModbusDevice:
    """pymodbus' TCP server on a thread of its own, with tables tests can set and read."""

    def __init__(self, port: int | None = None, units: Sequence[int] = (1,)) -> None:
        self.port = port or free_port()
        self.context = _context(units)
        self._loop = asyncio.new_event_loop()
        self.server: Any = None
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self._loop)

            async def boot() -> None:
                self.server = ModbusTcpServer(self.context, address=("127.0.0.1", self.port))
                await self.server.serve_forever(background=True)
                started.set()

            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        assert started.wait(10), "pymodbus server did not start"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    def set(self, table: str, address: int, values: Sequence[int], unit: int = 1) -> None:
        fc = {1: 5, 2: 2, 3: 16, 4: 4}[_FC[table]]
        self._call(self.server.async_setValues(unit, fc, address, list(values)))

    def get(self, table: str, address: int, count: int = 1, unit: int = 1) -> list[int]:
        got = self._call(self.server.async_getValues(unit, _FC[table], address, count))
        return [int(v) for v in got]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self.server.shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


_CHILD = """
import asyncio, sys
from tests.drivers.modbus_device import _context
from pymodbus.server import ModbusTcpServer
async def main():
    server = ModbusTcpServer(_context([1]), address=("127.0.0.1", int(sys.argv[1])))
    for a in range(0, 64):
        await server.async_setValues(1, 16, a, [1000 + a])
        await server.async_setValues(1, 4, a, [2000 + a])
    await server.serve_forever()
asyncio.run(main())
"""


class ChildDevice:
    """pymodbus' server in a child process: holding[a] = 1000 + a, input[a] = 2000 + a."""

    def __init__(self, root: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(self.port)], cwd=root,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise AssertionError("child Modbus device did not start")

    def client(self) -> ModbusTcpClient:
        client = ModbusTcpClient("127.0.0.1", port=self.port, timeout=2)
        client.connect()
        return client

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.thaw()
        self.proc.kill()
        self.proc.wait(5)

"""A Modbus TCP server (asyncio, standard library) over a register bank someone else owns.

Written here rather than taken from pymodbus because both of its users need what pymodbus'
server does not hand to its datastore: the client's address on every write (the runtime's
allow-list), refusing broadcast writes, bounding connections and frames, and exception codes
that are ours to choose. Framing (MODBUS Messaging on TCP/IP Implementation Guide v1.0b):
a 7-byte MBAP header (transaction id, protocol id 0, length = 1 + PDU bytes, unit id), then
the PDU. A header that cannot be trusted (protocol id not 0, a length outside 2..254) ends
the connection, since a byte stream cannot be resynchronised; a PDU that is well framed but
wrong is answered with an exception code: 01 illegal function (an unknown function code),
02 illegal data address, 03 illegal data value (a quantity out of bounds, a byte count or
length that disagrees with the quantity), 04 server device failure (the bank raised).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import struct
import threading
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hal.modbus._codec import Table

__all__ = [
    "DEVICE_FAILURE",
    "ILLEGAL_ADDRESS",
    "ILLEGAL_FUNCTION",
    "ILLEGAL_VALUE",
    "ModbusRefusedError",
    "ModbusTcpServer",
    "RegisterBank",
    "ServerLimits",
]

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE = 1, 2, 3, 4
_READ = {1: Table.COIL, 2: Table.DISCRETE_INPUT, 3: Table.HOLDING, 4: Table.INPUT}
_MAX_READ = {1: 2000, 2: 2000, 3: 125, 4: 125}  # the specification's quantities
log = logging.getLogger("vplc.modbus")


class ModbusRefusedError(Exception):
    """Raised by a bank: answered with this exception code (and never crashes the server)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(reason or f"exception code {code}")
        self.code = code


class RegisterBank(Protocol):
    """What the server serves. Called on the server's loop; must not block."""

    def read(self, table: Table, address: int, count: int, unit: int) -> Sequence[int]:
        """``count`` bits (0/1) or registers from ``address``; raise ModbusRefusedError."""
        ...

    def write(
        self, table: Table, address: int, values: Sequence[int], unit: int, peer: str
    ) -> Awaitable[None] | None:
        """Write bits or registers (``peer``: the client's ``host:port``); may refuse.

        May be a coroutine (awaited on the server's loop: other clients are served meanwhile).
        """
        ...


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """Bounds that keep a flood of clients or a silent one from holding the server."""

    max_connections: int = 16
    idle_timeout_s: float = 60.0


class ModbusTcpServer:
    """Serves a bank on ``host:port``; run it on a loop (``serve``) or its own thread."""

    def __init__(
        self, bank: RegisterBank, *, host: str = "127.0.0.1", port: int = 502,
        limits: ServerLimits | None = None,
    ) -> None:  # fmt: skip
        self.bank = bank
        self.host, self.port = host, port
        self.limits = limits or ServerLimits()
        self.stats: dict[str, int] = dict.fromkeys(
            ("connections", "refused_connections", "requests", "exceptions", "malformed",
             "writes"), 0,
        )  # fmt: skip
        self._open = 0
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None

    # -------------------------------------------------------------------- running
    async def serve(self, stop: asyncio.Event) -> None:
        """Listen until ``stop``; the bound port is in ``self.port`` once ``ready`` is set."""
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self.ready.set()
        try:
            await stop.wait()
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    def start_thread(self, name: str = "modbus-server", timeout: float = 5.0) -> None:
        """Serve on a daemon thread of its own; raise OSError if the port cannot be bound."""

        def main() -> None:
            async def run() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                await self.serve(self._stop)

            try:
                asyncio.run(run())
            except BaseException as exc:  # reported to start_thread's caller
                self.error = exc
                self.ready.set()

        self._thread = threading.Thread(target=main, name=name, daemon=True)
        self._thread.start()
        self.ready.wait(timeout)
        if self.error is not None:
            raise OSError(f"Modbus server on {self.host}:{self.port}: {self.error}")

    def stop(self, timeout: float = 2.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    # -------------------------------------------------------------------- one client
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername") or ("?", 0)
        peer = f"{peername[0]}:{peername[1]}"
        if self._open >= self.limits.max_connections:
            self.stats["refused_connections"] += 1
            writer.close()
            return
        self._open += 1
        self.stats["connections"] += 1
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(7), self.limits.idle_timeout_s)
                tid, pid, length, unit = struct.unpack(">HHHB", header)
                if pid != 0 or not 2 <= length <= 254:
                    self.stats["malformed"] += 1
                    log.info("modbus_malformed_header peer=%s pid=%d length=%d", peer, pid, length)
                    return
                pdu = await asyncio.wait_for(
                    reader.readexactly(length - 1), self.limits.idle_timeout_s
                )
                answer = await self.handle(pdu, unit, peer)
                writer.write(struct.pack(">HHHB", tid, 0, len(answer) + 1, unit) + answer)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass  # a silent, truncated or vanished client: its connection ends, nothing else
        finally:
            self._open -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def handle(self, pdu: bytes, unit: int, peer: str) -> bytes:
        """One request PDU → its response PDU (an exception response for a bad request)."""
        self.stats["requests"] += 1
        fc = pdu[0]
        try:
            return await self._dispatch(fc, pdu[1:], unit, peer)
        except ModbusRefusedError as exc:
            code = exc.code
        except Exception:  # a bank's bug is the device's failure, not the server's end
            log.exception("modbus_bank_error peer=%s fc=%d", peer, fc)
            code = DEVICE_FAILURE
        self.stats["exceptions"] += 1
        return bytes([(fc | 0x80) & 0xFF, code])

    async def _dispatch(self, fc: int, body: bytes, unit: int, peer: str) -> bytes:
        if fc in _READ:
            address, count = _fields(body, 4, ">HH")
            if not 1 <= count <= _MAX_READ[fc]:
                raise ModbusRefusedError(ILLEGAL_VALUE, f"quantity {count}")
            _span(address, count)
            values = self.bank.read(_READ[fc], address, count, unit)
            if fc <= 2:
                data = _pack_bits(values)
                return bytes([fc, len(data)]) + data
            return bytes([fc, 2 * count]) + struct.pack(f">{count}H", *values)
        if fc == 5:
            address, raw = _fields(body, 4, ">HH")
            if raw not in (0x0000, 0xFF00):
                raise ModbusRefusedError(ILLEGAL_VALUE, f"coil value {raw:#06x}")
            await self._write(Table.COIL, address, [1 if raw else 0], unit, peer)
            return bytes([fc]) + body
        if fc == 6:
            address, raw = _fields(body, 4, ">HH")
            await self._write(Table.HOLDING, address, [raw], unit, peer)
            return bytes([fc]) + body
        if fc in (15, 16):
            if len(body) < 5:
                raise ModbusRefusedError(ILLEGAL_VALUE, "short request")
            address, count, nbytes = struct.unpack(">HHB", body[:5])
            data = body[5:]
            limit, need = (1968, (count + 7) // 8) if fc == 15 else (123, 2 * count)
            if not 1 <= count <= limit or nbytes != need or len(data) != nbytes:
                raise ModbusRefusedError(ILLEGAL_VALUE, f"quantity {count}, byte count {nbytes}")
            _span(address, count)
            if fc == 15:
                values = [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
                await self._write(Table.COIL, address, values, unit, peer)
            else:
                await self._write(Table.HOLDING, address, list(struct.unpack(f">{count}H", data)),
                            unit, peer)  # fmt: skip
            return bytes([fc]) + struct.pack(">HH", address, count)
        raise ModbusRefusedError(ILLEGAL_FUNCTION, f"function code {fc}")

    async def _write(
        self, table: Table, address: int, values: list[int], unit: int, peer: str
    ) -> None:
        if unit == 0:
            # A broadcast is answered by nobody (so nobody learns it was refused): never act on
            # one, a PLC's parameters are not written by a message addressed to everyone.
            raise ModbusRefusedError(ILLEGAL_FUNCTION, "broadcast writes are not accepted")
        result = self.bank.write(table, address, values, unit, peer)
        if inspect.isawaitable(result):
            await result
        self.stats["writes"] += 1

    def statistics(self) -> dict[str, Any]:
        return dict(self.stats) | {"open_connections": self._open, "port": self.port}


def _fields(body: bytes, size: int, fmt: str) -> tuple[int, ...]:
    if len(body) != size:
        raise ModbusRefusedError(ILLEGAL_VALUE, f"request body of {len(body)} bytes, not {size}")
    return struct.unpack(fmt, body)


def _span(address: int, count: int) -> None:
    if address + count > 0x10000:
        raise ModbusRefusedError(ILLEGAL_ADDRESS, f"{address}+{count} runs past 65535")


def _pack_bits(values: Sequence[int]) -> bytes:
    out = bytearray((len(values) + 7) // 8)
    for i, v in enumerate(values):
        if v:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)

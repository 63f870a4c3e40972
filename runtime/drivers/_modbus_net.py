"""The network half of the ``modbus`` driver: a pymodbus client on its own thread and loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from typing import Any

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from hal import Quality
from hal.modbus import WIDTH, DataType, Table, decode, encode
from runtime.drivers._buffered import UNSET
from runtime.drivers._io_thread import IoThread, backoff, pause, until_first
from runtime.drivers._modbus_options import Block, ModbusDriverOptions

__all__ = ["ModbusLink", "Slot"]

Slot = tuple[Any, Quality, int]  # value, quality, arrival (time.monotonic_ns)
_GOOD, _BAD = Quality.GOOD, Quality.BAD


class _LostError(Exception):
    """The connection is gone: every task of this session ends, the link reconnects."""


class ModbusLink(IoThread):
    """Polls blocks and writes outputs over one TCP connection; meets the scan in dicts.

    ``slots[channel]`` is written only here (one whole tuple per value, an atomic dict store
    under the GIL), ``outputs[channel]`` only by the scan thread: neither side waits.
    """

    THREAD = "modbus-io"
    opts: ModbusDriverOptions

    def __init__(
        self, opts: ModbusDriverOptions, *, name: str, blocks: list[Block], outputs: list[str]
    ) -> None:
        self.opts = opts
        self.name = name
        self.blocks = blocks
        self.slots: dict[str, Slot] = {}
        self.outputs: dict[str, Any] = dict.fromkeys(outputs, UNSET)
        self.first_inputs = threading.Event()
        if not blocks:
            self.first_inputs.set()
        self.connected = threading.Event()
        self.stats: dict[str, Any] = dict.fromkeys(
            ("connects", "connect_failures", "reads", "read_errors", "writes", "write_errors",
             "clamped_writes"), 0,
        ) | {"last_error": ""}  # fmt: skip
        # Poll cycle times (ns) per group, the last 10,000: the benchmark's p50/p99.
        self.cycle_ns: dict[str, deque[int]] = {}
        self.log = structlog.get_logger("vplc.drivers.modbus").bind(driver=name)
        self._down_logged = False

    # ------------------------------------------------------------------ sessions
    async def _run(self, stop: asyncio.Event) -> None:
        o = self.opts
        delay = 0.0
        while not stop.is_set():
            if await pause(stop, delay):
                return
            client = AsyncModbusTcpClient(
                o.host, port=o.port, timeout=o.timeout_s, retries=o.retries, reconnect_delay=0,
                name=f"vplc-{self.name}",
            )  # fmt: skip
            try:
                if await client.connect():
                    delay = 0.0
                    await self._session(client, stop)
                else:
                    self._down("connect failed")
                    self.stats["connect_failures"] += 1
            except Exception as exc:
                self._down(f"{type(exc).__name__}: {exc}")
            finally:
                self.connected.clear()
                self._all_bad()
                client.close()
            delay = backoff(delay, 0.05, o.reconnect_max_s)

    async def _session(self, client: AsyncModbusTcpClient, stop: asyncio.Event) -> None:
        self.stats["connects"] += 1
        self.connected.set()
        self.log.info("modbus_connected", host=self.opts.host, port=self.opts.port)
        self._down_logged = False
        groups: dict[str, list[Block]] = {}
        for block in self.blocks:
            groups.setdefault(block.group, []).append(block)
        tasks = [asyncio.create_task(self._poll(client, g, blocks)) for g, blocks in groups.items()]
        tasks.append(asyncio.create_task(self._writer(client, stop)))
        tasks.append(asyncio.create_task(self._watch(client)))
        error = await until_first(tasks, stop)
        if stop.is_set() and client.connected:
            with contextlib.suppress(Exception):  # the safe values, once more
                await asyncio.wait_for(self._write_all(client, {}, full=True),
                                       self.opts.close_timeout_s)  # fmt: skip
            return
        if error is not None:
            raise error

    async def _watch(self, client: AsyncModbusTcpClient) -> None:
        # A peer that closes the connection while nothing is being sent (outputs only, no
        # change) is seen here, so the outputs are written again as soon as it is back.
        while client.connected:
            await asyncio.sleep(0.05)
        raise _LostError("connection closed by the device")

    def _down(self, why: str) -> None:
        self.stats["last_error"] = why
        if not self._down_logged:  # once per outage, not once per attempt
            self._down_logged = True
            self.log.warning("modbus_down", host=self.opts.host, port=self.opts.port, error=why)

    def _all_bad(self) -> None:
        now = time.monotonic_ns()
        for block in self.blocks:
            for name, *_ in block.members:
                old = self.slots.get(name)
                self.slots[name] = (None if old is None else old[0], _BAD, now)

    # ------------------------------------------------------------------ polling
    async def _poll(self, client: AsyncModbusTcpClient, group: str, blocks: list[Block]) -> None:
        period = round(self.opts.period_ms(group) * 1e6)
        times = self.cycle_ns.setdefault(group, deque(maxlen=10_000))
        deadline = time.monotonic_ns()
        while True:
            start = time.monotonic_ns()
            for block in blocks:
                await self._read(client, block)
            times.append(time.monotonic_ns() - start)
            if len(self.slots) >= sum(len(b.members) for b in self.blocks):
                self.first_inputs.set()
            deadline += period
            now = time.monotonic_ns()
            if now > deadline:  # missed polls are skipped, never run back to back
                deadline += ((now - deadline) // period + 1) * period
            await asyncio.sleep((deadline - now) / 1e9)

    async def _read(self, client: AsyncModbusTcpClient, block: Block) -> None:
        fn = {
            Table.COIL: client.read_coils, Table.DISCRETE_INPUT: client.read_discrete_inputs,
            Table.HOLDING: client.read_holding_registers, Table.INPUT: client.read_input_registers,
        }[block.table]  # fmt: skip
        self.stats["reads"] += 1
        try:
            rr = await fn(block.address, count=block.count, device_id=block.unit)
        except ModbusException as exc:
            self._block_failed(block, f"{type(exc).__name__}: {exc}")
            if not client.connected:
                raise _LostError(str(exc)) from None
            return
        if rr.isError():
            code = getattr(rr, "exception_code", "?")
            self._block_failed(block, f"exception code {code} reading {self._where(block)}")
            return
        now = time.monotonic_ns()
        slots = self.slots
        if block.table in (Table.COIL, Table.DISCRETE_INPUT):
            bits = rr.bits
            for name, offset, _, _, _ in block.members:
                slots[name] = (bool(bits[offset]), _GOOD, now)
            return
        regs = rr.registers
        for name, offset, dtype, bo, wo in block.members:
            value = decode(regs[offset : offset + WIDTH[dtype]], dtype, bo, wo)
            if value != value or value in (float("inf"), float("-inf")):
                slots[name] = (None, _BAD, now)  # a NaN on the wire is no reading
            else:
                slots[name] = (value, _GOOD, now)

    def _where(self, block: Block) -> str:
        return f"unit {block.unit} {block.table.value} {block.address}+{block.count}"

    def _block_failed(self, block: Block, why: str) -> None:
        self.stats["read_errors"] += 1
        self.stats["last_error"] = why
        now = time.monotonic_ns()
        for name, *_ in block.members:
            old = self.slots.get(name)
            self.slots[name] = (None if old is None else old[0], _BAD, now)

    # ------------------------------------------------------------------ writing
    async def _writer(self, client: AsyncModbusTcpClient, stop: asyncio.Event) -> None:
        o = self.opts
        last: dict[str, Any] = {}  # per connection: a reconnect re-writes every output
        next_full = 0.0
        while True:
            now = time.monotonic()
            full = o.refresh_s is not None and now >= next_full
            if full:
                next_full = now + (o.refresh_s or 0.0)
            await self._write_all(client, last, full=full)
            await asyncio.sleep(o.write_ms / 1000)

    async def _write_all(self, client: AsyncModbusTcpClient, last: dict[str, Any], *,
                         full: bool) -> None:  # fmt: skip
        for channel, value in list(self.outputs.items()):
            if value is UNSET or (not full and channel in last and last[channel] == value):
                continue
            if await self._write(client, channel, value):
                last[channel] = value

    async def _write(self, client: AsyncModbusTcpClient, channel: str, value: Any) -> bool:
        """True when the device answered (accepted or refused); False to try again."""
        o = self.opts
        ch = o.channels[channel]
        unit = o.unit_of(ch)
        self.stats["writes"] += 1
        try:
            if ch.table is Table.COIL:
                rr = await client.write_coil(ch.address, bool(value), device_id=unit)
            else:
                regs, clamped = encode(float(value), ch.dtype, *o.orders(ch))
                if clamped:
                    self.stats["clamped_writes"] += 1
                if len(regs) == 1 and ch.dtype is not DataType.BOOL:
                    rr = await client.write_register(ch.address, regs[0], device_id=unit)
                else:
                    rr = await client.write_registers(ch.address, regs, device_id=unit)
        except ModbusException as exc:
            self.stats["write_errors"] += 1
            self.stats["last_error"] = f"write {channel}: {exc}"
            if not client.connected:
                raise _LostError(str(exc)) from None
            return False
        except ValueError as exc:  # NaN: the HAL never hands one over; refuse, do not send
            self.stats["write_errors"] += 1
            self.stats["last_error"] = f"write {channel}: {exc}"
            return False
        if rr.isError():
            self.stats["write_errors"] += 1
            code = getattr(rr, "exception_code", "?")
            self.stats["last_error"] = f"write {channel}: exception code {code}"
            # The device answered and refused: sending the same value again every write_ms
            # would only repeat the refusal; the next change (or reconnect) tries again.
        return True

    def statistics(self) -> dict[str, Any]:
        return dict(self.stats) | {"connected": self.connected.is_set()}

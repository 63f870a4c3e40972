"""A simulated plant served as a Modbus TCP device in real time (``vplc sim serve --protocol
modbus``), for hardware-in-the-loop runs of an app bound with the ``modbus`` driver.

The register map follows the plant's signal order (``plant_map`` gives it; ``sim serve`` prints
it at start), unit id 1 (any unit is answered, as by most TCP-only devices):

* numeric sensors: input registers, float32, big-endian words, two registers each from 0;
* BOOL sensors: discrete inputs from 0;
* numeric actuators: holding registers, float32, two each from 0 (writable, read back);
* BOOL actuators: coils from 0.

A sensor without a reading (BAD, e.g. an injected fault) reads as NaN, which a Modbus client
can only take as "no value". A write is clamped by the plant like any actuator command; a NaN
or ±inf is refused with exception code 03, half of a float or an address outside the map with
02, and a refused request changes nothing. Modbus has no ownership claims: any client that
can reach the port drives the plant, so the server listens on 127.0.0.1 unless told otherwise.
``actuator_timeout_s`` de-energises every actuator when no write has arrived for that long, as
remote I/O does on a lost master.
"""

from __future__ import annotations

import asyncio
import math
import signal
import struct
import time
from collections.abc import Sequence
from typing import Any

from hal import Direction, IecType
from hal.modbus import (
    ILLEGAL_ADDRESS,
    ILLEGAL_VALUE,
    DataType,
    ModbusRefusedError,
    ModbusTcpServer,
    Table,
    decode,
    encode,
)
from sim_hardware._served import served_plant
from sim_hardware.plants import get_plant_class

__all__ = ["ModbusPlant", "plant_map", "run_modbus"]

_NAN = struct.unpack(">HH", struct.pack(">f", math.nan))  # what a reading without value reads


def plant_map(plant: str) -> dict[str, str]:
    """Channel → ``table:address:type`` (the ``modbus`` driver's short form) of a plant kind."""
    counters = dict.fromkeys(Table, 0)
    out: dict[str, str] = {}
    for sig in get_plant_class(plant).signals:
        sensor = sig.direction is Direction.IN
        if sig.type is IecType.BOOL:
            table = Table.DISCRETE_INPUT if sensor else Table.COIL
            out[sig.name] = f"{table.value}:{counters[table]}"
            counters[table] += 1
        else:
            table = Table.INPUT if sensor else Table.HOLDING
            out[sig.name] = f"{table.value}:{counters[table]}:float32"
            counters[table] += 2
    return out


class ModbusPlant:
    """The plant's points, stepped in real time, as a ``hal.modbus.RegisterBank``."""

    def __init__(
        self, *, plant: str, seed: int = 0, params: dict[str, Any] | None = None,
        initial: dict[str, float] | None = None, noise: bool = True,
        actuator_timeout_s: float | None = None,
    ) -> None:  # fmt: skip
        self.driver, self.points = served_plant(
            plant, seed=seed, params=params, initial=initial, noise=noise
        )
        self.map = plant_map(plant)
        # (table, address) → (channel, word index) for every register or bit of the map
        self.cells: dict[tuple[Table, int], tuple[str, int]] = {}
        for name in self.points:
            table, address, *rest = self.map[name].split(":")
            for k in range(2 if rest else 1):
                self.cells[(Table(table), int(address) + k)] = (name, k)
        self.timeout = actuator_timeout_s
        self.counters = dict.fromkeys(("reads", "writes", "refused", "watchdog_trips"), 0)
        self._last_write = time.monotonic()
        self._tripped = False
        self._pending: dict[str, list[int]] = {}  # a float whose first half has arrived

    # -------------------------------------------------------------------- RegisterBank
    def read(self, table: Table, address: int, count: int, unit: int) -> Sequence[int]:
        self.counters["reads"] += 1
        out: list[int] = []
        for a in range(address, address + count):
            cell = self.cells.get((table, a))
            if cell is None:
                raise ModbusRefusedError(ILLEGAL_ADDRESS, f"{table.value} {a} is not mapped")
            name, k = cell
            out.append(self._word(name, k))
        return out

    def _word(self, name: str, k: int) -> int:
        point = self.points[name]
        if point.type is IecType.BOOL:
            return int(bool(point.value)) if point.quality.name != "BAD" else 0
        if point.quality.name == "BAD":
            return int(_NAN[k])
        return encode(float(point.value), DataType.FLOAT32)[0][k]

    def write(
        self, table: Table, address: int, values: Sequence[int], unit: int, peer: str
    ) -> None:
        # Checked whole before anything is applied: a refused request changes nothing.
        updates: dict[str, Any] = {}
        for i, raw in enumerate(values):
            cell = self.cells.get((table, address + i))
            if cell is None:
                raise ModbusRefusedError(ILLEGAL_ADDRESS, f"{table.value} {address + i}")
            name, k = cell
            if table is Table.COIL:
                updates[name] = bool(raw)
                continue
            regs = list(updates.get(name) or [None, None])
            regs[k] = raw
            updates[name] = regs
        for name, value in updates.items():
            if isinstance(value, list) and None in value:
                self.counters["refused"] += 1
                raise ModbusRefusedError(ILLEGAL_ADDRESS, f"{name}: half of a float32")
            if isinstance(value, list):
                number = decode(value, DataType.FLOAT32)
                if not math.isfinite(number):
                    self.counters["refused"] += 1
                    raise ModbusRefusedError(ILLEGAL_VALUE, f"{name}: {number!r}")
                updates[name] = number
        for name, value in updates.items():
            self.points[name].value = value
        self.counters["writes"] += 1
        self._last_write = time.monotonic()
        self._tripped = False

    # -------------------------------------------------------------------- the plant
    def step(self, plant_ns: int) -> None:
        """Actuators → plant, integrate to ``plant_ns``, measure (with noise and faults)."""
        if (
            self.timeout
            and not self._tripped
            and time.monotonic() - self._last_write > self.timeout
        ):
            self._tripped = True
            self.counters["watchdog_trips"] += 1
            for p in self.points.values():
                if p.direction is Direction.OUT:
                    p.value = p.safe_value
        self.driver.write_outputs(plant_ns)
        self.driver.read_inputs(plant_ns)


async def serve_modbus(
    plant: ModbusPlant, server: ModbusTcpServer, *, rate_hz: float, speed: float,
    stop: asyncio.Event,
) -> None:  # fmt: skip
    """Step the plant on absolute deadlines while the server answers on the same loop."""
    listener = asyncio.create_task(server.serve(stop))
    period = round(1e9 / rate_hz)
    t0 = deadline = time.monotonic_ns()
    try:
        while not stop.is_set() and not listener.done():
            now = time.monotonic_ns()
            if now < deadline:
                await asyncio.sleep((deadline - now) / 1e9)
                continue
            plant.step(round((now - t0) * speed))
            deadline += period
            behind = (time.monotonic_ns() - deadline) // period
            if behind > 0:  # missed steps are skipped, never run back to back
                deadline += (behind + 1) * period
    finally:
        stop.set()
        await asyncio.gather(listener, return_exceptions=True)
    if listener.done() and listener.exception() is not None:
        raise listener.exception()  # type: ignore[misc]


def run_modbus(plant: ModbusPlant, server: ModbusTcpServer, *, rate_hz: float, speed: float) -> int:
    """Serve until SIGINT/SIGTERM; the process's exit code (1 if the port cannot be bound)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_modbus(plant, server, rate_hz=rate_hz, speed=speed, stop=stop)

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"vplc sim serve: error: Modbus on {server.host}:{server.port}: {exc}", flush=True)
        return 1
    return 0

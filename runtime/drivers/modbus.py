"""The ``modbus`` HAL driver: a Modbus TCP device's coils and registers as points.

Each channel of ``options.channels`` names a value on the device: its table (``coil``,
``discrete_input``, ``holding``, ``input``), 0-based address, data type (``bool``; ``int16``,
``uint16``, ``int32``, ``uint32``, ``int64``, ``uint64``, ``float32``, ``float64`` over 1, 2 or
4 registers), byte and word order, unit id and poll group; ``holding:100:float32`` is the short
form. Coils and holding registers may be bound as inputs (polled) or outputs (written);
discrete inputs and input registers only as inputs. Scaling, ranges and safe values are the
point's, as for any driver (the HAL applies them).

Reading: each poll group reads its channels every ``period_ms``; adjacent addresses of one
unit and table (gaps up to ``max_gap``) are coalesced into one request of at most
``max_registers`` registers or ``max_bits`` bits. A request waits ``timeout_s`` per attempt,
``retries`` more attempts after a timeout. An exception response or a failed request turns
the block's points BAD at once; a point whose last good reading is older than its group's
period plus ``timeout_s`` is latched BAD by the scan itself (a device that stops answering,
a lost connection, a stuck thread: all look alike), so BAD comes within one poll period plus
the timeout whatever the cause.

Writing: outputs are sent when they change (checked every ``write_ms``; FC 5 for a coil, FC 6
for one register, FC 16 for more), all of them after every (re)connect and on close (the
safe values), and every ``refresh_s`` if set (for devices with a communication watchdog).
A value the register type cannot hold is clamped to it and counted (``clamped_writes``).

``read_inputs``/``write_outputs`` never block: the pymodbus client runs on the driver's own
thread and event loop (:class:`runtime.drivers._modbus_net.ModbusLink`), meeting the scan in
per-channel slots. The connection is re-established with capped, jittered backoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from hal import ChannelInfo, Direction, DriverError, IecType, Point
from hal.modbus import BIT_TABLES, WIDTH, natural_iec
from runtime.drivers._buffered import BufferedDriver
from runtime.drivers._modbus_net import ModbusLink
from runtime.drivers._modbus_options import ModbusDriverOptions, plan_blocks

__all__ = ["ModbusDriver", "ModbusDriverOptions"]

_IN = frozenset({Direction.IN})
_BOTH = frozenset({Direction.IN, Direction.OUT})


class ModbusDriver(BufferedDriver):
    """Channels declared in the options, exchanged with one device by a background thread."""

    Options: ClassVar[type[BaseModel]] = ModbusDriverOptions  # checked by the loader
    KIND: ClassVar[str] = "modbus"

    def __init__(self, *, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        try:
            self.options = ModbusDriverOptions.model_validate(dict(options))
        except ValidationError as exc:
            raise DriverError(f"modbus driver {name!r}: invalid options: {exc}") from None
        opts = self.options
        self._channels = {
            c: ChannelInfo(
                c, _BOTH if ch.writable else _IN, natural_iec(ch.dtype),
                description=f"unit {opts.unit_of(ch)} {ch.table.value} {ch.address} {ch.dtype}",
            )
            for c, ch in opts.channels.items()
        }  # fmt: skip
        self._inputs: list[tuple[Point, str, int]] = []  # point, channel, staleness ns
        self._outputs: list[tuple[Point, str]] = []
        self._link: ModbusLink | None = None
        self._restored: dict[str, Any] = {}
        self._stale: set[str] = set()
        self.stale_events = 0

    # -- Driver protocol ---------------------------------------------------------------
    def channels(self) -> Mapping[str, ChannelInfo]:
        return self._channels

    def bind(self, points: Sequence[tuple[Point, str]]) -> None:
        inputs: list[tuple[Point, str, int]] = []
        outputs: list[tuple[Point, str]] = []
        opts = self.options
        for point, channel in points:
            info = self._channels.get(channel)
            where = f"modbus driver {self.name!r}: point {point.name!r}"
            if info is None:
                raise DriverError(
                    f"{where}: no declared channel {channel!r} (channels: {sorted(self._channels)})"
                )
            ch = opts.channels[channel]
            if point.direction not in info.directions:
                raise DriverError(
                    f"{where}: channel {channel!r} is a {ch.table.value}, which is read-only"
                )
            bits = ch.table in BIT_TABLES
            if (point.type is IecType.BOOL) != bits or point.type is IecType.STRING:
                raise DriverError(
                    f"{where} of type {point.type.value} cannot carry channel {channel!r} "
                    f"({ch.table.value}, {ch.dtype.value}): BOOL points go to coils and discrete "
                    "inputs, numeric points to registers"
                )
            if point.direction is Direction.IN:
                stale = opts.period_ms(ch.group) / 1e3 + opts.timeout_s
                inputs.append((point, channel, round(stale * 1e9)))
            elif any(c == channel for _, c in outputs):
                raise DriverError(f"{where}: output channel {channel!r} is bound twice")
            else:
                outputs.append((point, channel))
        self._check_output_overlap([c for _, c in outputs])
        self._inputs, self._outputs = inputs, outputs

    def _check_output_overlap(self, channels: list[str]) -> None:
        # Two outputs writing the same register would fight over it, cycle after cycle.
        taken: dict[tuple[int, str, int], str] = {}
        opts = self.options
        for name in channels:
            ch = opts.channels[name]
            width = WIDTH[ch.dtype]
            for a in range(ch.address, ch.address + width):
                key = (opts.unit_of(ch), ch.table.value, a)
                if key in taken:
                    raise DriverError(
                        f"modbus driver {self.name!r}: output channels {taken[key]!r} and "
                        f"{name!r} both write unit {key[0]} {key[1]} {a}"
                    )
                taken[key] = name

    def open(self) -> None:
        """Start the I/O thread; wait ≤ ``open_wait_s`` for a first reading of each input."""
        if self._link is not None:
            return
        blocks = plan_blocks(self.options, {c for _, c, _ in self._inputs})
        link = ModbusLink(
            self.options, name=self.name, blocks=blocks, outputs=[c for _, c in self._outputs]
        )
        self._start_link(link)

    @property
    def link(self) -> ModbusLink | None:
        """The I/O side while open (poll cycle times for benchmarks, statistics)."""
        return self._link

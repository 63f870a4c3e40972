"""Options of the ``modbus`` HAL driver (pydantic, unknown keys refused) and its read blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hal.modbus import BIT_TABLES, WIDTH, DataType, Order, Table

__all__ = ["Block", "ChannelOptions", "ModbusDriverOptions", "PollGroup", "plan_blocks"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ChannelOptions(_Strict):
    """One channel: a value at ``address`` of a ``table`` on a ``unit`` (0-based addresses)."""

    table: Table
    address: int = Field(ge=0, le=65535, description="0-based (register 40001 is holding 0)")
    type: DataType | None = Field(
        default=None, description="bool for coils/discrete inputs (default), int16 for registers"
    )
    unit: int | None = Field(default=None, ge=0, le=255, description="default: the driver's")
    byte_order: Order | None = Field(default=None, description="within a register")
    word_order: Order | None = Field(default=None, description="of the registers of a value")
    group: str = Field(default="default", description="the poll group that reads it")

    @model_validator(mode="after")
    def _fits(self) -> ChannelOptions:
        bits = self.table in BIT_TABLES
        dtype = self.dtype
        if bits != (dtype is DataType.BOOL):
            kind = "bool" if bits else "a register type (int16 … float64)"
            raise ValueError(f"a {self.table.value} holds {kind}, not {dtype.value}")
        if self.address + WIDTH[dtype] - 1 > 65535:
            raise ValueError(
                f"{dtype.value} at {self.address} needs {WIDTH[dtype]} registers: past 65535"
            )
        return self

    @property
    def dtype(self) -> DataType:
        if self.type is not None:
            return self.type
        return DataType.BOOL if self.table in BIT_TABLES else DataType.INT16

    @property
    def writable(self) -> bool:
        return self.table in (Table.COIL, Table.HOLDING)


class PollGroup(_Strict):
    period_ms: float = Field(ge=1, le=3_600_000, description="how often its blocks are read")


def _parse_short(name: str, text: str) -> dict[str, Any]:
    """``holding:100:float32`` (table:address[:type]) → the long form."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 3 or not parts[1].isdigit():
        raise ValueError(
            f"channels.{name}: {text!r}: expected table:address[:type], e.g. holding:100:float32"
        )
    out: dict[str, Any] = {"table": parts[0], "address": int(parts[1])}
    if len(parts) == 3:
        out["type"] = parts[2]
    return out


class ModbusDriverOptions(_Strict):
    """The ``options`` of a ``type: modbus`` driver in app.yaml: one Modbus TCP device."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=502, ge=1, le=65535)
    unit: int = Field(default=1, ge=0, le=255, description="default unit id of the channels")
    timeout_s: float = Field(default=0.5, ge=0.01, le=60, description="per request attempt")
    retries: int = Field(default=1, ge=0, le=10, description="attempts after a timeout")
    poll_ms: float = Field(default=100.0, ge=1, le=3_600_000, description="group 'default'")
    poll_groups: dict[str, PollGroup] = Field(default_factory=dict)
    byte_order: Order = "big"
    word_order: Order = "big"
    max_gap: int = Field(
        default=0, ge=0, le=100, description="unbound registers a read may span to coalesce"
    )
    max_registers: int = Field(default=125, ge=1, le=125, description="per read request")
    max_bits: int = Field(default=2000, ge=1, le=2000, description="per read request")
    write_ms: float = Field(default=10.0, ge=1, le=60_000, description="output check period")
    refresh_s: float | None = Field(
        default=None, ge=0.01, le=86400, description="re-write every output this often"
    )
    reconnect_max_s: float = Field(default=5.0, ge=0.01, le=3600)
    open_wait_s: float = Field(default=2.0, ge=0, le=3600)
    close_timeout_s: float = Field(default=1.0, ge=0, le=3600)
    channels: dict[str, ChannelOptions] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("channels"), dict):
            chans = {
                k: _parse_short(str(k), v) if isinstance(v, str) else v
                for k, v in data["channels"].items()
            }
            data = dict(data) | {"channels": chans}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModbusDriverOptions:
        groups = set(self.poll_groups) | {"default"}
        for name, ch in self.channels.items():
            if ch.group not in groups:
                raise ValueError(
                    f"channels.{name}.group: no poll group {ch.group!r} (groups: {sorted(groups)})"
                )
        return self

    def period_ms(self, group: str) -> float:
        g = self.poll_groups.get(group)
        return g.period_ms if g is not None else self.poll_ms

    def unit_of(self, ch: ChannelOptions) -> int:
        return self.unit if ch.unit is None else ch.unit

    def orders(self, ch: ChannelOptions) -> tuple[Order, Order]:
        return ch.byte_order or self.byte_order, ch.word_order or self.word_order


@dataclass
class Block:
    """One read request: ``count`` bits/registers of a table from ``address`` on ``unit``."""

    group: str
    unit: int
    table: Table
    address: int
    count: int
    # channel, offset in the block, data type, byte order, word order
    members: list[tuple[str, int, DataType, Order, Order]] = field(default_factory=list)


def plan_blocks(opts: ModbusDriverOptions, channels: set[str]) -> list[Block]:
    """The read requests of the polled ``channels``: adjacent addresses (within ``max_gap``)
    of one group, unit and table coalesced, each request at most max_registers / max_bits."""
    keyed: dict[tuple[str, int, Table], list[tuple[int, int, str]]] = {}
    for name in sorted(channels):
        ch = opts.channels[name]
        key = (ch.group, opts.unit_of(ch), ch.table)
        keyed.setdefault(key, []).append((ch.address, WIDTH[ch.dtype], name))
    blocks: list[Block] = []
    for (group, unit, table), spans in sorted(keyed.items()):
        limit = opts.max_bits if table in BIT_TABLES else opts.max_registers
        current: Block | None = None
        for address, width, name in sorted(spans):
            end = address + width
            if (
                current is None
                or address > current.address + current.count + opts.max_gap
                or max(end, current.address + current.count) - current.address > limit
            ):
                current = Block(group, unit, table, address, width)
                blocks.append(current)
            current.count = max(current.count, end - current.address)
            ch = opts.channels[name]
            current.members.append((name, address - current.address, ch.dtype, *opts.orders(ch)))
    return blocks

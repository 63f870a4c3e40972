"""Values ↔ Modbus registers: 16/32/64-bit integers and IEEE floats, byte and word order."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from hal._types import IecType

__all__ = ["BIT_TABLES", "WIDTH", "DataType", "Order", "Table", "decode", "encode", "natural_iec"]

Order = Literal["big", "little"]


class Table(StrEnum):
    """The four Modbus data tables."""

    COIL = "coil"  # read/write bits (FC 1, 5, 15)
    DISCRETE_INPUT = "discrete_input"  # read-only bits (FC 2)
    HOLDING = "holding"  # read/write registers (FC 3, 6, 16)
    INPUT = "input"  # read-only registers (FC 4)


BIT_TABLES = frozenset({Table.COIL, Table.DISCRETE_INPUT})


class DataType(StrEnum):
    """How a value sits in the registers (``bool`` is a coil or discrete input)."""

    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"


WIDTH: dict[DataType, int] = {
    DataType.BOOL: 1, DataType.INT16: 1, DataType.UINT16: 1, DataType.INT32: 2,
    DataType.UINT32: 2, DataType.FLOAT32: 2, DataType.INT64: 4, DataType.UINT64: 4,
    DataType.FLOAT64: 4,
}  # fmt: skip
_FMT = {
    DataType.INT16: "h", DataType.UINT16: "H", DataType.INT32: "i", DataType.UINT32: "I",
    DataType.INT64: "q", DataType.UINT64: "Q", DataType.FLOAT32: "f", DataType.FLOAT64: "d",
}  # fmt: skip
_INT_LIMITS = {
    t: ((-(1 << (16 * WIDTH[t] - 1)), (1 << (16 * WIDTH[t] - 1)) - 1) if f.islower()
        else (0, (1 << (16 * WIDTH[t])) - 1))
    for t, f in _FMT.items() if f not in "fd"
}  # fmt: skip
_F32_MAX = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]


def natural_iec(dtype: DataType) -> IecType:
    """The IEC type a point of this data type naturally has (INT 16, DINT 32 bit, else LREAL)."""
    if dtype is DataType.BOOL:
        return IecType.BOOL
    if dtype is DataType.INT16:
        return IecType.INT
    if dtype in (DataType.UINT16, DataType.INT32):
        return IecType.DINT
    if dtype is DataType.FLOAT32:
        return IecType.REAL
    return IecType.LREAL


def _words(data: bytes, byte_order: Order, word_order: Order) -> list[int]:
    regs = [int.from_bytes(data[i : i + 2], byte_order) for i in range(0, len(data), 2)]
    return regs[::-1] if word_order == "little" else regs


def decode(
    regs: Sequence[int], dtype: DataType, byte_order: Order = "big", word_order: Order = "big"
) -> int | float:
    """The value held by ``WIDTH[dtype]`` registers (``big``/``big`` is the Modbus default)."""
    ordered = list(regs)[::-1] if word_order == "little" else regs
    data = b"".join(int(r).to_bytes(2, byte_order) for r in ordered)
    value: int | float = struct.unpack(">" + _FMT[dtype], data)[0]
    return value


def encode(
    value: float, dtype: DataType, byte_order: Order = "big", word_order: Order = "big"
) -> tuple[list[int], bool]:
    """``(registers, clamped)``: the value in its registers, clamped to what the type holds.

    Integers round to the nearest (ties to even, as REAL_TO_INT); a value the type cannot
    hold becomes its nearest limit and ``clamped`` is True; NaN is refused (ValueError).
    """
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("NaN cannot be written to a device")
    clamped = False
    fmt = _FMT[dtype]
    if fmt in "fd":
        number = float(value)
        if dtype is DataType.FLOAT32 and abs(number) > _F32_MAX:
            number, clamped = math.copysign(_F32_MAX, number), True
        elif math.isinf(number):
            number, clamped = math.copysign(1.7976931348623157e308, number), True
        data = struct.pack(">" + fmt, number)
    else:
        lo, hi = _INT_LIMITS[dtype]
        if isinstance(value, float) and math.isinf(value):
            whole = hi if value > 0 else lo
            clamped = True
        else:
            whole = round(value)
        if not lo <= whole <= hi:
            whole, clamped = min(max(whole, lo), hi), True
        data = struct.pack(">" + fmt, whole)
    return _words(data, byte_order, word_order), clamped

"""IEC 61131-3 elementary types, point direction and signal quality used across the HAL."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class IecType(StrEnum):
    """Elementary data types a HAL point can carry (IEC 61131-3 names)."""

    BOOL = "BOOL"
    INT = "INT"
    DINT = "DINT"
    REAL = "REAL"
    LREAL = "LREAL"
    STRING = "STRING"

    @property
    def is_numeric(self) -> bool:
        return self not in (IecType.BOOL, IecType.STRING)

    @property
    def is_integer(self) -> bool:
        return self in (IecType.INT, IecType.DINT)


# Integer limits as the standard defines them; values outside are clamped, never wrapped,
# because a wrapped actuator command is a safety problem while a clamped one is visible.
INT_LIMITS: dict[IecType, tuple[int, int]] = {
    IecType.INT: (-32768, 32767),
    IecType.DINT: (-(2**31), 2**31 - 1),
}


class Direction(StrEnum):
    """Whether the control app reads (IN) or writes (OUT) a point."""

    IN = "in"
    OUT = "out"


class Quality(IntEnum):
    """OPC-style signal quality; ordered so that min() of qualities is the worst."""

    BAD = 0
    UNCERTAIN = 1
    GOOD = 2


def default_value(iec: IecType) -> bool | int | float | str:
    """The IEC initial value of a type (FALSE, 0, 0.0, '')."""
    if iec is IecType.BOOL:
        return False
    if iec.is_integer:
        return 0
    if iec is IecType.STRING:
        return ""
    return 0.0


def coerce(iec: IecType, value: object) -> bool | int | float | str:
    """Convert a value to the Python representation of ``iec``; raise TypeError/ValueError."""
    if iec is IecType.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        raise TypeError(f"expected BOOL (true/false), got {value!r}")
    if iec is IecType.STRING:
        if isinstance(value, str):
            return value
        raise TypeError(f"expected STRING, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected {iec.value} number, got {value!r}")
    if iec.is_integer:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"expected {iec.value} integer, got {value!r}")
        lo, hi = INT_LIMITS[iec]
        return min(max(int(value), lo), hi)
    return float(value)

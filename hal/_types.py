"""IEC 61131-3 elementary types, point direction and signal quality used across the HAL."""

from __future__ import annotations

import math
from enum import IntEnum, StrEnum
from typing import Any


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


# Largest finite IEC REAL (IEEE 754 binary32); LREAL is a Python float (binary64).
REAL_MAX = 3.4028234663852886e38
# The values a float-typed point can hold: anything beyond cannot reach a device as a number.
FLOAT_LIMITS: dict[IecType, tuple[float, float]] = {
    IecType.REAL: (-REAL_MAX, REAL_MAX),
    IecType.LREAL: (-1.7976931348623157e308, 1.7976931348623157e308),
}


class Direction(StrEnum):
    """Whether the control app reads (IN) or writes (OUT) a point."""

    IN = "in"
    OUT = "out"


class OnInvalid(StrEnum):
    """What happens to an output write that is not a valid value of its point."""

    CLAMP = "clamp"  # out of range → the nearest limit; no nearest value (NaN, wrong type) → hold
    HOLD = "hold"  # keep the last good value
    FAULT = "fault"  # go to FAULT: every output to its safe value


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
    try:
        return float(value)
    except OverflowError:  # an int beyond ~1.8e308: no float holds it
        raise ValueError(f"{iec.value} cannot hold {_short(value)}") from None


def coerce_exact(iec: IecType, value: object) -> bool | int | float | str:
    """Like ``coerce`` for declared and operator-written values, but never clamps.

    NaN, ±inf and numbers the type cannot hold (an INT above 32767, a REAL above 3.4e38) are
    refused with ValueError: a manifest's safe value or an operator's write is taken exactly
    as given or not at all.
    """
    if isinstance(value, float) and not math.isfinite(value) and iec is not IecType.STRING:
        raise ValueError(f"expected a finite number, got {value!r}")
    coerced = coerce(iec, value)
    if iec.is_integer:
        lo, hi = INT_LIMITS[iec]
        if not lo <= int(value) <= hi:  # type: ignore[call-overload]
            raise ValueError(f"{_short(value)} is outside the {iec.value} range {lo}..{hi}")
    elif iec in FLOAT_LIMITS:
        lo_f, hi_f = FLOAT_LIMITS[iec]
        if not lo_f <= coerced <= hi_f:  # type: ignore[operator]
            raise ValueError(f"{_short(value)} is outside the {iec.value} range ±{hi_f:g}")
    return coerced


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"

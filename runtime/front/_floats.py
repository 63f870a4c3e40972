"""A REAL that arrived as a 32-bit float, given back as the decimal the sender typed."""

from __future__ import annotations

import math
import struct

__all__ = ["shortest_float32"]


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same binary32 as ``value`` (36.6f → 36.6).

    An OPC UA client or a Sparkplug host sends a REAL as a 32-bit Float: 36.6 arrives as
    36.599998474121094. The parameter (a Python float) and its audit record should hold what
    the operator typed, which is the shortest decimal rounding to the same Float.
    """
    if not math.isfinite(value):
        return value
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return value

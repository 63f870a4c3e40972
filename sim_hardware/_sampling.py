"""The sim driver's per-cycle loops, compiled when built: noisy readings in, commands out."""

from __future__ import annotations

import math  # compiled, the .pxd makes this C libm: what math.log & co. call, unboxed
from collections.abc import Callable
from typing import Any

from hal import Quality
from sim_hardware._fastgauss import TWOPI

__all__ = ["Analog", "Binary", "measure_clean", "write_commands"]

# a BOOL channel: reader, [(point, converter or None)]
Binary = tuple[Callable[[], Any], list[tuple[Any, Any]]]

_GOOD, _UNCERTAIN = Quality.GOOD, Quality.UNCERTAIN


class Analog:
    """An analogue channel as the fault-free path needs it (C doubles when compiled)."""

    __slots__ = ("hi", "lo", "points", "std")

    def __init__(self, *, std: float, lo: float, hi: float, points: list[tuple[Any, Any]]) -> None:
        self.std = std  # noise standard deviation, 0: none
        self.lo = lo
        self.hi = hi
        # (point.latch, converter or None): the method bound once here, not at every reading
        self.points = [(point.latch, conv) for point, conv in points]


def measure_clean(
    analog: list[Analog], values: list[Any], binary: list[Binary], rng: Any, now_ns: int
) -> int:
    """Latch every bound sensor without faults: Random.gauss's draws, in the same order.

    ``values`` are the true values of the ``analog`` channels, in their order.
    ``rng`` is a ``random.Random`` whose ``gauss`` is the Box-Muller copy inlined here
    (``_fastgauss.INLINE_GAUSS``); its cached second draw ``gauss_next`` is kept up to date.
    Returns the index of the first analogue channel whose true value is NaN or infinite (the
    model diverged), else -1.
    """
    rand = rng.random
    z_next = rng.gauss_next
    diverged = -1
    i = -1
    for ch in analog:
        i += 1
        x = values[i]
        std, lo, hi = ch.std, ch.lo, ch.hi
        if x - x != 0.0 and diverged < 0:  # NaN or ±inf: inf - inf is NaN
            diverged = i
        quality = _GOOD if lo <= x <= hi else _UNCERTAIN
        if std > 0.0:
            if z_next is None:
                x2pi = rand() * TWOPI
                g2rad = math.sqrt(-2.0 * math.log(1.0 - rand()))
                z = math.cos(x2pi) * g2rad
                z_next = math.sin(x2pi) * g2rad
            else:
                z = z_next
                z_next = None
            x += std * (0.0 + z)  # gauss returns mu + z * sigma: -0.0 becomes 0.0
        value = x if lo <= x <= hi else lo if x < lo or x != x else hi
        for latch, conv in ch.points:
            latch(value if conv is None else conv(value), quality, now_ns)
    rng.gauss_next = z_next
    for breader, bpoints in binary:
        bvalue = breader()
        for point, conv in bpoints:
            point.latch(bvalue if conv is None else conv(bvalue), _GOOD, now_ns)
    return diverged


def write_commands(wired: list[tuple[Callable[[], Any], Callable[[float], None]]]) -> None:
    """Hand each output point's raw value to its actuator (None, never written: 0)."""
    for raw, set_ in wired:
        value = raw()
        set_(float(value) if value is not None else 0.0)

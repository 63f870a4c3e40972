"""The sim driver's per-cycle loops, compiled when built: noisy readings in, commands out."""

from __future__ import annotations

import math  # compiled, the .pxd makes this C libm: what math.log & co. call, unboxed
from collections.abc import Callable
from typing import Any

from hal import IecType, Point, Quality
from sim_hardware._fastgauss import TWOPI

__all__ = ["Analog", "Binary", "Cell", "Output", "measure_clean", "write_commands"]

_GOOD, _UNCERTAIN = Quality.GOOD, Quality.UNCERTAIN
_FLOATS = (IecType.REAL, IecType.LREAL)


class Cell:
    """An input point this module latches itself: what ``Point.latch`` does, without a call.

    Only for points whose latch is plain (REAL/LREAL without scaling, or BOOL): the value is
    the reading as a float (bool), the quality GOOD unless the reading lies outside the point's
    range (UNCERTAIN, or the driver's UNCERTAIN), a forced point takes its forced value. Every
    other point goes through ``Point.latch``. ``tests/sim_hardware/test_sampling.py`` holds
    the two to the same result. The range is the point's declared one (its spec is frozen).
    """

    __slots__ = ("hi", "lo", "point", "ranged")

    def __init__(self, point: Point) -> None:
        self.point = point
        rng = point.spec.range
        self.ranged = rng is not None
        self.lo, self.hi = (float(rng[0]), float(rng[1])) if rng is not None else (0.0, 0.0)


def plain(point: Point, conv: Any) -> bool:
    """Whether ``point`` (read through the driver's converter ``conv``) can be a :class:`Cell`."""
    if point.spec.scaling is not None:
        return False
    if point.type is IecType.BOOL:
        return conv is bool
    return conv is None and point.type in _FLOATS


class Analog:
    """An analogue channel as the fault-free path needs it (C doubles when compiled)."""

    __slots__ = ("cells", "hi", "lo", "points", "std")

    def __init__(self, *, std: float, lo: float, hi: float, points: list[tuple[Any, Any]]) -> None:
        self.std = std  # noise standard deviation, 0: none
        self.lo = lo
        self.hi = hi
        self.cells = [Cell(point) for point, conv in points if plain(point, conv)]
        # (point.latch, converter or None): the method bound once here, not at every reading
        self.points = [(point.latch, conv) for point, conv in points if not plain(point, conv)]


class Binary:
    """A BOOL channel: the points latched inline and the others (with their converter)."""

    __slots__ = ("cells", "points")

    def __init__(self, points: list[tuple[Any, Any]]) -> None:
        self.cells = [Cell(point) for point, conv in points if plain(point, conv)]
        self.points = [(point.latch, conv) for point, conv in points if not plain(point, conv)]


def _latch_float(cell: Cell, value: float, boxed: Any, quality: Quality, now_ns: int) -> None:
    """``Point.latch(value, quality, now_ns)`` for a plain REAL/LREAL point; ``boxed`` is
    ``float(value)``, the object the point holds."""
    point = cell.point
    if point.forced:
        point.value = point.forced_value
        point.quality = _GOOD
    else:
        point.value = boxed
        if quality is _GOOD and cell.ranged and not cell.lo <= value <= cell.hi:
            quality = _UNCERTAIN
        point.quality = quality
    point.timestamp_ns = now_ns


def _latch_bool(cell: Cell, value: bool, now_ns: int) -> None:
    """``Point.latch(value, GOOD, now_ns)`` for a BOOL point (no range, no scaling)."""
    point = cell.point
    if point.forced:
        point.value = point.forced_value
    else:
        point.value = value
    point.quality = _GOOD
    point.timestamp_ns = now_ns


def measure_clean(
    analog: list[Analog],
    values: list[Any],
    binary: list[Binary],
    bvalues: list[Any],
    rng: Any,
    now_ns: int,
) -> int:
    """Latch every bound sensor without faults: Random.gauss's draws, in the same order.

    ``values`` are the true values of the ``analog`` channels, ``bvalues`` those of the
    ``binary`` ones, in their order.
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
        boxed = float(value)  # what Point.latch's float() makes of it; one object per channel
        for cell in ch.cells:
            _latch_float(cell, value, boxed, quality, now_ns)
        for latch, conv in ch.points:
            latch(value if conv is None else conv(value), quality, now_ns)
    rng.gauss_next = z_next
    i = -1
    for b in binary:
        i += 1
        bvalue = bvalues[i]
        if b.cells:
            flag = bool(bvalue)  # what both converters make of it
            for cell in b.cells:
                _latch_bool(cell, flag, now_ns)
        for latch, conv in b.points:
            latch(bvalue if conv is None else conv(bvalue), _GOOD, now_ns)
    return diverged


class Output:
    """An output point paired with its actuator's ``set``: the write path of one channel."""

    __slots__ = ("plain", "point", "set")

    def __init__(self, point: Point, set_: Callable[[float], None]) -> None:
        self.point = point
        self.set = set_
        self.plain = point.spec.scaling is None  # output_raw is the (forced) value itself


def write_commands(wired: list[Output]) -> None:
    """Hand each output point's raw value (``Point.output_raw``) to its actuator (None: 0)."""
    for out in wired:
        point = out.point
        if out.plain:
            value = point.forced_value if point.forced else point.value
        else:
            value = point.output_raw()
        out.set(float(value) if value is not None else 0.0)

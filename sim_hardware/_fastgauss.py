"""Whether Random.gauss may be inlined in the sim driver's hot path, draw for draw."""

from __future__ import annotations

import math
import random
from typing import Any, cast

__all__ = ["COS", "INLINE_GAUSS", "LOG", "SIN", "SQRT", "TWOPI"]

TWOPI, LOG, SQRT, COS, SIN = 2.0 * math.pi, math.log, math.sqrt, math.cos, math.sin


def _inline_matches() -> bool:
    """True if this interpreter's ``Random.gauss`` is the Box-Muller copy the driver inlines.

    Inlining saves a Python call per noisy reading (a third of the driver's time per cycle).
    The check covers the values and the cached second draw (``gauss_next``), which snapshots
    carry; on an interpreter whose ``gauss`` differs, the driver calls ``gauss`` instead.
    """
    ref, mine = random.Random(12345), cast(Any, random.Random(12345))
    for _ in range(9):
        z = mine.gauss_next
        mine.gauss_next = None
        if z is None:
            x2pi = mine.random() * TWOPI
            g2rad = SQRT(-2.0 * LOG(1.0 - mine.random()))
            z = COS(x2pi) * g2rad
            mine.gauss_next = SIN(x2pi) * g2rad
        if ref.gauss(0.0, 1.0) != 0.0 + z * 1.0:
            return False
    return bool(ref.getstate() == mine.getstate())


INLINE_GAUSS = _inline_matches()

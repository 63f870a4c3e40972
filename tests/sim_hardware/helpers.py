"""Shared helpers: build points and SimDrivers bound to them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hal import Direction, Point, PointSpec
from sim_hardware import SimDriver


def point(channel: str, direction: str = "in", type_: str = "LREAL", name: str = "") -> Point:
    safe = 0.0 if direction == "out" else None
    if safe is not None and type_ == "BOOL":
        safe = False
    spec = PointSpec(
        name=name or channel,
        type=type_,
        direction=direction,
        driver="sim",
        channel=channel,
        safe=safe,
    )
    return Point(spec)


def make_driver(
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    **options: Any,
) -> tuple[SimDriver, dict[str, Point]]:
    """A bound, opened SimDriver and its points by channel name."""
    driver = SimDriver(name="sim", options=options)
    info = driver.channels()
    pts: dict[str, Point] = {}
    for ch in inputs:
        is_bool = info[ch].type.value == "BOOL"
        pts[ch] = point(ch, "in", "BOOL" if is_bool else "LREAL")
    for ch in outputs:
        pts[ch] = point(ch, "out")
    driver.bind([(p, ch) for ch, p in pts.items()])
    driver.open()
    return driver, pts


def run(
    driver: SimDriver,
    pts: Mapping[str, Point],
    seconds: float,
    *,
    dt: float = 1.0,
    start_s: float = 0.0,
    commands: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Cycle the driver from ``start_s`` for ``seconds``; return the readings of every cycle."""
    for ch, value in (commands or {}).items():
        pts[ch].value = value
    rows = []
    n = round(seconds / dt)
    k0 = round(start_s / dt)
    for k in range(k0, k0 + n + 1):
        now = round(k * dt * 1e9)
        driver.read_inputs(now)
        rows.append(
            {ch: (p.value, p.quality) for ch, p in pts.items() if p.direction is Direction.IN}
        )
        driver.write_outputs(now)
    return rows

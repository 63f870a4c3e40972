"""The plant a network server serves (``sim serve --protocol modbus|opcua``): a SimDriver and
one bound point per signal, actuators with safe values (False or 0)."""

from __future__ import annotations

from typing import Any

from hal import Direction, IecType, Point, PointSpec
from sim_hardware.driver import SimDriver

__all__ = ["served_plant"]


def served_plant(
    plant: str, *, seed: int, params: dict[str, Any] | None,
    initial: dict[str, float] | None, noise: bool,
) -> tuple[SimDriver, dict[str, Point]]:  # fmt: skip
    """The opened driver and its points by signal name, in the plant's signal order."""
    driver = SimDriver(
        name="serve",
        options={"plant": plant, "seed": seed, "params": params or {},
                 "initial": initial or {}, "noise": noise},
    )  # fmt: skip
    points: dict[str, Point] = {}
    for sig in driver.plant.signals:
        out = sig.direction is Direction.OUT
        safe = (False if sig.type is IecType.BOOL else 0.0) if out else None
        points[sig.name] = Point(
            PointSpec(name=sig.name, type=sig.type, direction=sig.direction, driver="sim",
                      channel=sig.name, safe=safe)
        )  # fmt: skip
    driver.bind([(p, name) for name, p in points.items()])
    driver.open()
    return driver, points

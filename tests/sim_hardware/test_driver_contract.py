"""The simulator passes the same driver contract as every other HAL driver."""

from __future__ import annotations

import pytest

from hal import PointSpec
from sim_hardware import SimDriver
from tests.hal.driver_contract import check_driver_contract


def spec(channel: str, direction: str, type_: str = "LREAL") -> PointSpec:
    safe = (False if type_ == "BOOL" else 0.0) if direction == "out" else None
    return PointSpec(
        name=f"p_{channel}", type=type_, direction=direction, driver="sim", channel=channel,
        safe=safe,
    )  # fmt: skip


BIOREACTOR = [
    spec("temperature", "in"),
    spec("ph", "in"),
    spec("do", "in"),
    spec("agitator_speed", "in", "DINT"),
    spec("base_pump_running", "in", "BOOL"),
    spec("heating_valve", "out"),
    spec("co2_valve", "out"),
    spec("agitator", "out", "INT"),
]
TANK = [spec("level", "in"), spec("high_level", "in", "BOOL"), spec("outlet_pump", "out")]


@pytest.mark.parametrize(
    ("options", "bindings"),
    [
        ({"plant": "bioreactor", "seed": 1}, BIOREACTOR),
        ({"plant": "tank", "seed": 2}, TANK),
        (
            {"faults": [{"kind": "dropout", "channel": "ph"}, {"kind": "stuck", "channel": "do"}]},
            BIOREACTOR,
        ),
    ],
)
def test_sim_driver_contract(options: dict[str, object], bindings: list[PointSpec]) -> None:
    check_driver_contract(lambda: SimDriver(name="sim", options=options), bindings)


def test_contract_catches_a_broken_driver() -> None:
    class Leaky(SimDriver):
        def bind(self, points):
            return None  # accepts anything: the contract must notice

    with pytest.raises(AssertionError, match="bind accepted"):
        check_driver_contract(lambda: Leaky(name="sim", options={}), BIOREACTOR)

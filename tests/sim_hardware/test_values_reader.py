"""The driver's fast path: one call for all true values, pre-digested channels, lean substeps."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from hal import Direction, IecType
from sim_hardware import Bioreactor, Plant, SimDriver, Tank
from sim_hardware.plants.skid import BioreactorSkid

from .helpers import make_driver, point, run

COMMANDS = {"heating_valve": 70.0, "air_valve": 40.0, "o2_valve": 20.0, "co2_valve": 15.0,
            "base_pump": 30.0, "agitator": 180.0, "feed_pump": 50.0, "fill_valve": 10.0,
            "harvest_pump": 5.0}  # fmt: skip
ANALOG = ["temperature", "ph", "do", "level", "biomass", "agitator_speed", "feed_flow"]


def _analog(plant: Plant) -> list[str]:
    return [
        s.name for s in plant.signals if s.direction is Direction.IN and s.type is not IecType.BOOL
    ]


def _bits(values: list[Any]) -> list[Any]:
    """Floats as their IEEE bits: equal means bit for bit (and NaN equals NaN)."""
    return [struct.pack("<d", v) if isinstance(v, float) else v for v in values]


def _one_by_one(plant: Plant, channels: list[str]) -> list[Any]:
    return _bits([plant.read(ch) for ch in channels])


def _drive(plant: Plant, seconds: int) -> None:
    for name, value in COMMANDS.items():
        if name in plant.actuators():
            plant.write(name, value)
    for _ in range(seconds):
        plant.step(1.0)


@pytest.mark.parametrize("cls", [Bioreactor, BioreactorSkid, Tank])
def test_values_reader_is_the_per_channel_readers_in_one_call(cls: type[Plant]) -> None:
    plant = cls()
    every = [s.name for s in plant.signals if s.direction is Direction.IN]
    some = list(reversed(_analog(plant)))[::2]  # any subset, any order
    vessel = [ch for ch in ANALOG if ch in plant.signal_map]  # the skid's model-read ones
    readers = {tuple(chs): plant.values_reader(chs) for chs in (every, some, vessel, [])}
    for _ in range(5):
        _drive(plant, 300)
        for channels, read in readers.items():
            assert _bits(read()) == _one_by_one(plant, list(channels))


@pytest.mark.parametrize("cls", [Bioreactor, BioreactorSkid, Tank])
def test_values_reader_follows_a_restore_that_rebuilds_the_plant(cls: type[Plant]) -> None:
    source, plant = cls(), cls()
    channels = _analog(plant)
    read = plant.values_reader(channels)  # taken before the restore, as the driver does
    _drive(source, 900)
    plant.restore(json.loads(json.dumps(source.snapshot())))
    assert _bits(read()) == _one_by_one(source, channels)
    _drive(source, 60)
    _drive(plant, 60)
    assert _bits(read()) == _one_by_one(source, channels) == _one_by_one(plant, channels)


def test_a_plant_without_its_own_values_reader_gets_the_default() -> None:
    tank = Tank(initial={"level": 40.0})
    assert type(tank).values_reader is Plant.values_reader
    channels = ["level", "high_level", "volume", "low_level"]
    assert tank.values_reader(channels)() == [40.0, False, 400.0, False]


def _readings(faults: list[dict[str, Any]]) -> list[Any]:
    driver, pts = make_driver([*ANALOG, "feed_pump_running"], list(COMMANDS), seed=3)
    # two more points on one channel: an integer (converted) and a second float
    extra = [point("temperature", "in", "DINT", name="TI"), point("ph", "in", name="pH2")]
    driver.bind([*((p, ch) for ch, p in pts.items()), (extra[0], "temperature"), (extra[1], "ph")])
    for fault in faults:
        driver.inject(fault)
    rows = run(driver, pts, 600.0, dt=0.5, commands=COMMANDS)
    return [rows, [(p.value, p.quality) for p in extra], driver.plant.snapshot()]


def test_the_fast_path_reads_exactly_what_the_general_path_reads() -> None:
    # a fault that never starts sends the driver down the general paths: per-channel readers
    # and Random.gauss for the readings, a fault check before every substep
    later = {"start_s": 1e6}
    clean = _readings([])
    assert clean == _readings([{"kind": "bias", "channel": "do", "offset": 1.0, **later}])
    assert clean == _readings([{"kind": "valve_stuck", "channel": "air_valve", **later}])
    assert clean[1][0][0] == round(clean[0][-1]["temperature"][0])


@pytest.mark.parametrize(("max_step_s", "steps"), [(1.0, 1), (0.5, 1), (0.25, 2), (0.2, 3)])
def test_a_read_integrates_in_equal_substeps_no_longer_than_max_step(
    max_step_s: float, steps: int
) -> None:
    driver = SimDriver(name="sim", options={"max_step_s": max_step_s})
    reference = Bioreactor()
    for name, value in COMMANDS.items():
        driver.plant.write(name, value)
        reference.write(name, value)
    driver.read_inputs(0)
    for k in range(1, 41):
        driver.read_inputs(k * 500_000_000)
        for _ in range(steps):
            reference.step(500_000_000 / steps * 1e-9)
    assert driver.statistics()["substeps"] == 40 * steps
    assert driver.plant.time == 20_000_000_000 * 1e-9  # from the clock, not summed substeps
    reference.time = driver.plant.time
    assert driver.plant.snapshot() == reference.snapshot()

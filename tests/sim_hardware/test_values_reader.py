"""The driver's fast path: one call for all true values, pre-digested channels, lean substeps."""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import pytest

from hal import Direction, IecType
from sim_hardware import Bioreactor, Plant, SimDriver, Tank
from sim_hardware.plants import _skid_readings
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


def _bool_channels(plant: Plant) -> list[str]:
    return [s.name for s in plant.signals if s.direction is Direction.IN and s.type is IecType.BOOL]


def test_the_skid_one_call_readings_cover_its_table_in_order() -> None:
    skid = BioreactorSkid()
    assert list(_skid_readings.ANALOG) == _analog(skid)
    assert list(_skid_readings.BINARY) == _bool_channels(skid)
    # the skid's own (compiled) readers are in use, not the per-channel default
    assert type(skid).values_reader is not Plant.values_reader
    assert type(skid).bools_reader is not Plant.bools_reader


def test_the_skid_one_call_readings_are_its_readers_at_every_step() -> None:
    """Random commands, utility cuts, stuck valves and failed drives, every step compared bit
    for bit: a compiled expression that rounds differently once in thousands shows here (GCC's
    pow(x, 2.0) → x * x did, against the readers' libm pow)."""
    rnd = random.Random(7)
    skid = BioreactorSkid(initial={"volume": 40.0, "biomass": 2.0, "glucose": 8.0})
    analog, bools = _analog(skid), _bool_channels(skid)
    read_analog, read_bools = skid.values_reader(analog), skid.bools_reader(bools)
    every = list(skid.actuators())
    for i in range(6000):
        if rnd.random() < 0.3:
            skid.write(rnd.choice(every), rnd.uniform(-10.0, 320.0))
        if rnd.random() < 0.005:
            utility = rnd.choice(skid.utilities)
            skid.set_utility(utility, not skid.utility_ok[utility])
        if rnd.random() < 0.003:
            drive = rnd.choice([skid.feed, skid.base, skid.harvest, skid.agitator])
            drive.failed = not drive.failed
        if i == 3000:
            skid.restore(json.loads(json.dumps(skid.snapshot())))  # rebuilds the parts
        skid.step(rnd.choice((0.01, 0.2, 1.0)))
        assert _bits(read_analog()) == _one_by_one(skid, analog), i
        assert read_bools() == [skid.read(ch) for ch in bools], i


def test_the_skid_one_call_readings_are_its_readers_in_random_states() -> None:
    """The state set directly (positions, speeds, temperatures, broth) to 20,000 random points:
    rare last-bit differences of a compiled expression need many distinct inputs."""
    rnd = random.Random(11)
    skid = BioreactorSkid()
    analog = _analog(skid)
    read = skid.values_reader(analog)
    valves = [skid.heating, skid.cooling, skid.air, skid.o2, skid.co2, skid.fill]
    for i in range(20000):
        for v in valves:
            v.position = rnd.uniform(0.0, 100.0)
        for drive in (skid.feed, skid.base, skid.harvest, skid.agitator):
            drive.speed = rnd.uniform(0.0, 300.0 if drive is skid.agitator else 100.0)
        skid.T, skid.Tj = rnd.uniform(5.0, 90.0), rnd.uniform(5.0, 90.0)
        skid.do, skid.X, skid.V = (
            rnd.uniform(0.0, 200.0),
            rnd.uniform(0.0, 30.0),
            rnd.uniform(0.0, 100.0),
        )
        skid.mu = rnd.uniform(0.0, 1e-4)
        assert _bits(read()) == _one_by_one(skid, analog), i

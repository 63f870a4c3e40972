"""Plant physics sanity: every actuator moves its process variable the right way."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from sim_hardware import Bioreactor, PlantError, Tank, get_plant_class, plant_kinds


def settle(plant: Bioreactor | Tank, seconds: float, dt: float = 1.0, **commands: float) -> None:
    for ch, value in commands.items():
        plant.write(ch, value)
    for _ in range(round(seconds / dt)):
        plant.step(dt)


def test_registry() -> None:
    assert {"bioreactor", "tank"} <= set(plant_kinds())
    assert get_plant_class("tank") is Tank
    with pytest.raises(PlantError, match=r"known plants: .*bioreactor"):
        get_plant_class("reactor")


def test_initial_conditions_are_off_setpoint() -> None:
    b = Bioreactor()
    assert b.read("temperature") == 25.0
    assert b.read("ph") == pytest.approx(7.3)
    assert b.read("do") == 100.0
    assert b.read("volume") == 60.0
    assert b.read("level") == pytest.approx(60.0)


def test_params_and_initial_are_validated() -> None:
    with pytest.raises(PlantError, match="bogus"):
        Bioreactor(params={"bogus": 1})
    with pytest.raises(PlantError, match="unknown initial state 'tempp'"):
        Bioreactor(initial={"tempp": 30})
    b = Bioreactor(params={"time_scale": 1.0}, initial={"bicarbonate": 30.0, "ph": 7.1})
    assert b.read("ph") == pytest.approx(7.1)
    assert b.params.time_scale == 1.0


@pytest.mark.parametrize(
    ("plant", "initial", "message"),
    [
        (
            Bioreactor,
            {"glucose": -1e300},
            "initial 'glucose' = -1e+300 is outside its range 0..400",
        ),
        (Bioreactor, {"temperature": 120.0}, "'temperature' = 120 is outside its range 0..100"),
        (Bioreactor, {"volume": 101.0}, "'volume' = 101 is outside its range 0..100"),
        (Bioreactor, {"ph": 1.0}, "'ph' = 1 is outside its range 2..12"),
        (Bioreactor, {"do": float("nan")}, "'do' must be finite"),
        (Tank, {"level": 100.5}, "'level' = 100.5 is outside its range 0..100"),
        (Tank, {"volume": -1.0}, "'volume' = -1 is outside its range"),
    ],
)
def test_initial_values_outside_the_declared_ranges_are_refused(
    plant: Any, initial: dict[str, float], message: str
) -> None:
    with pytest.raises(PlantError, match=re.escape(message)):
        plant(initial=initial)
    edge = {k: plant().initial_ranges()[k][1] for k in initial}  # the bounds themselves are in
    plant(initial=edge)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_plant_parameters_must_be_finite(bad: float) -> None:
    with pytest.raises(PlantError, match="ambient_c"):
        Bioreactor(params={"ambient_c": bad})


def test_heating_raises_and_cooling_lowers_temperature() -> None:
    b = Bioreactor()
    settle(b, 900, heating_valve=100)
    hot = b.read("temperature")
    assert hot > 33.0
    assert b.read("jacket_temperature") > hot
    settle(b, 1800, heating_valve=0, cooling_valve=100)
    assert b.read("temperature") < hot - 5.0
    assert b.read("jacket_temperature") < b.read("temperature")


def test_cooling_water_failure_removes_cooling() -> None:
    b = Bioreactor(initial={"temperature": 40.0, "jacket_temperature": 40.0})
    b.set_utility("cooling_water", False)
    settle(b, 900, cooling_valve=100)
    assert b.read("temperature") > 39.0


def test_co2_lowers_and_base_raises_ph() -> None:
    b = Bioreactor()
    b.write("agitator", 150)
    settle(b, 600, air_valve=20, co2_valve=30)
    low = b.read("ph")
    assert low < 7.1
    assert b.read("pco2") > 60.0
    settle(b, 600, co2_valve=0, air_valve=20, base_pump=100)
    assert b.read("ph") > low + 0.1
    assert b.read("base_total") == pytest.approx(20.0 / 60.0 * 600, rel=0.01)  # 20 mL/min


def test_air_strips_co2() -> None:
    b = Bioreactor(initial={"ph": 6.9})
    settle(b, 1200, agitator=150, air_valve=100)
    assert b.read("ph") > 7.2


def test_agitation_raises_do() -> None:
    slow, fast = Bioreactor(), Bioreactor()
    for b, rpm in ((slow, 50.0), (fast, 250.0)):
        b.write("air_valve", 30)
        settle(b, 3600, agitator=rpm)
    assert fast.read("do") > slow.read("do") + 10.0
    assert fast.read("agitator_speed") == pytest.approx(250.0)


def test_oxygen_enrichment_raises_do_above_air_saturation_possible() -> None:
    b = Bioreactor(initial={"biomass": 0.0})
    settle(b, 1800, agitator=150, air_valve=50, o2_valve=50)
    assert b.read("do") > 150.0


def test_biomass_grows_and_consumes_glucose_and_makes_lactate() -> None:
    # wide temperature/pH windows: this checks the Monod kinetics without running controllers
    b = Bioreactor(params={"t_width_c": 100.0, "ph_width": 100.0})
    x0, s0 = b.read("biomass"), b.read("glucose")
    settle(b, 4 * 3600, dt=1.0, agitator=150, air_valve=80, o2_valve=20, co2_valve=5)
    assert b.read("biomass") > 1.5 * x0
    assert b.read("glucose") < s0 - 0.3
    assert b.read("lactate") > 0.2


def test_growth_needs_glucose() -> None:
    b = Bioreactor(initial={"glucose": 0.0, "temperature": 37.0, "ph": 7.0})
    x0 = b.read("biomass")
    settle(b, 3600, agitator=150, air_valve=50)
    assert b.read("biomass") <= x0


def test_feed_raises_volume_and_glucose_and_harvest_lowers_volume() -> None:
    b = Bioreactor()
    s0 = b.read("glucose")
    settle(b, 3600, feed_pump=100)
    assert b.read("volume") == pytest.approx(62.0, abs=0.05)
    assert b.read("glucose") > s0 + 5.0
    assert b.read("feed_pump_running") is True
    assert b.read("feed_flow") == pytest.approx(2.0)
    settle(b, 600, feed_pump=0, harvest_pump=100)
    assert b.read("volume") == pytest.approx(12.0, abs=0.5)
    settle(b, 600, harvest_pump=100)
    assert b.read("volume") == 0.0


def test_fill_valve_fills_to_vessel_limit_and_states_stay_finite() -> None:
    b = Bioreactor(initial={"volume": 0.0})
    settle(b, 3 * 3600, dt=1.0, fill_valve=100, heating_valve=100, co2_valve=100, o2_valve=100)
    assert b.read("volume") == 100.0
    for sig in b.signals:
        if sig.direction.value == "in" and sig.type.value != "BOOL":
            value = float(b.read(sig.name))
            assert math.isfinite(value), sig.name
    assert 2.0 <= b.read("ph") <= 12.0
    assert b.read("do") >= 0.0


def test_extreme_base_keeps_ph_clamped() -> None:
    b = Bioreactor(initial={"volume": 2.0})
    settle(b, 3600, base_pump=100)
    assert b.read("ph") <= 12.0


def test_tank_fills_and_drains() -> None:
    t = Tank(initial={"level": 50.0})
    settle(t, 60, inlet_valve=100)
    assert t.read("volume") == pytest.approx(500.0 + 60.0 * 60 / 60 - 60 * 5 / 2 / 60 * 0, abs=6)
    assert t.read("inlet_flow") == pytest.approx(60.0)
    settle(t, 3600, inlet_valve=0, outlet_pump=100)
    assert t.read("volume") == 0.0
    assert t.read("low_level") is True
    assert t.read("outlet_flow") == 0.0
    assert t.read("pump_running") is True


def test_plant_snapshot_restore_continues_identically() -> None:
    a = Bioreactor()
    settle(a, 600, heating_valve=60, agitator=150, air_valve=40, co2_valve=10)
    b = Bioreactor()
    b.restore(a.snapshot())
    settle(a, 600)
    settle(b, 600)
    assert a.snapshot() == b.snapshot()
    with pytest.raises(PlantError, match="plant 'bioreactor', not 'tank'"):
        Tank().restore(a.snapshot())


def test_unknown_channels_are_named() -> None:
    b = Bioreactor()
    with pytest.raises(PlantError, match="no out channel 'heater'"):
        b.write("heater", 1.0)
    with pytest.raises(PlantError, match="no in channel 'temp'"):
        b.read("temp")

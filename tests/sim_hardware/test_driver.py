"""SimDriver: options, binding errors, time handling, determinism, snapshot/restore, cost."""

from __future__ import annotations

import json
import time

import pytest

from hal import Direction, Driver, DriverError, Point, Quality, get_driver_factory
from sim_hardware import SimDriver

from .helpers import make_driver, point, run

SENSORS = ["temperature", "ph", "do", "biomass", "glucose", "volume", "feed_pump_running"]
ACTUATORS = ["heating_valve", "co2_valve", "air_valve", "agitator", "feed_pump"]
COMMANDS = {"heating_valve": 70.0, "co2_valve": 10.0, "air_valve": 30.0, "agitator": 150.0}


def test_is_a_hal_driver_and_registered_under_sim() -> None:
    driver = SimDriver(name="sim", options={})
    assert isinstance(driver, Driver)
    assert get_driver_factory("sim") is SimDriver


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"plant": "reactor"}, "unknown plant 'reactor'"),
        ({"seeed": 1}, "seeed"),
        ({"params": {"time_scale": -1}}, "time_scale"),
        ({"params": {"nope": 1}}, "nope"),
        ({"initial": {"nope": 1}}, "unknown initial state 'nope'"),
        ({"max_step_s": 0}, "max_step_s"),
        ({"faults": [{"kind": "bias", "channel": "heating_valve", "offset": 1}]}, "not a sensor"),
        ({"faults": [{"kind": "melt", "channel": "ph"}]}, "melt"),
        ({"faults": [{"kind": "valve_stuck", "channel": "base_pump"}]}, "not a valve"),
        ({"faults": [{"kind": "utility_failure", "utility": "steam"}]}, "no utility 'steam'"),
        ({"plant": "tank", "faults": [{"kind": "cooling_water_failure"}]}, "no utility"),
    ],
)
def test_invalid_options_raise_driver_error(options: dict[str, object], match: str) -> None:
    with pytest.raises(DriverError, match=match):
        SimDriver(name="sim", options=options)


def test_bind_unknown_channel_names_point_channel_and_channels() -> None:
    driver = SimDriver(name="sim", options={})
    with pytest.raises(DriverError) as exc:
        driver.bind([(point("temprature", name="TT101"), "temprature")])
    text = str(exc.value)
    assert "'TT101'" in text
    assert "'temprature'" in text
    assert "temperature (in)" in text


def test_bind_direction_mismatch_is_rejected_both_ways() -> None:
    driver = SimDriver(name="sim", options={})
    with pytest.raises(DriverError, match=r"'TCV1' is an OUT point but channel 'temperature'"):
        driver.bind([(point("temperature", "out", name="TCV1"), "temperature")])
    with pytest.raises(DriverError, match=r"'HV' is an IN point but channel 'heating_valve'"):
        driver.bind([(point("heating_valve", "in", name="HV"), "heating_valve")])


def test_bind_rejects_type_mismatch_and_double_writers() -> None:
    driver = SimDriver(name="sim", options={})
    with pytest.raises(DriverError, match="BOOL cannot carry channel 'ph'"):
        driver.bind([(point("ph", type_="BOOL"), "ph")])
    with pytest.raises(DriverError, match="'air_valve' is bound twice"):
        driver.bind(
            [(point("air_valve", "out", name="a"), "air_valve"),
             (point("air_valve", "out", name="b"), "air_valve")]
        )  # fmt: skip


def test_readings_are_latched_with_timestamp_quality_and_type() -> None:
    driver, pts = make_driver(SENSORS, ACTUATORS, seed=3)
    driver.read_inputs(5_000_000_000)
    for ch in SENSORS:
        assert pts[ch].timestamp_ns == 5_000_000_000
        assert pts[ch].quality is Quality.GOOD
    assert pts["feed_pump_running"].value is False
    assert pts["temperature"].value == pytest.approx(25.0, abs=0.2)
    assert driver.plant.time == 0.0  # the first call anchors plant time


def test_plant_time_follows_now_and_backward_clock_only_reanchors() -> None:
    driver, _ = make_driver(["temperature"], [], max_step_s=0.25)
    driver.read_inputs(10**9)
    driver.read_inputs(3 * 10**9)
    assert driver.plant.time == pytest.approx(2.0)
    assert driver.statistics()["substeps"] == 8
    driver.read_inputs(0)  # another process's clock: no step, new anchor
    assert driver.plant.time == pytest.approx(2.0)
    driver.read_inputs(10**9)
    assert driver.plant.time == pytest.approx(3.0)


def test_outputs_reach_the_plant() -> None:
    driver, pts = make_driver(["feed_pump_running"], ["feed_pump", "agitator"])
    pts["feed_pump"].value = 50.0
    pts["agitator"].value = 120.0
    driver.write_outputs(0)
    assert driver.plant.actuator("agitator").command == 120.0
    driver.read_inputs(0)
    assert pts["feed_pump_running"].value is True


def _readings(seed: int, cycles: int, **options: object) -> list[tuple[object, ...]]:
    driver, pts = make_driver(SENSORS, ACTUATORS, seed=seed, **options)
    for ch, value in COMMANDS.items():
        pts[ch].value = value
    out = []
    for k in range(cycles):
        now = k * 100_000_000
        driver.read_inputs(now)
        out.append(tuple(pts[ch].value for ch in SENSORS))
        driver.write_outputs(now)
    return out


def test_same_seed_same_readings_bit_for_bit_and_different_seed_differs() -> None:
    a = _readings(7, 10_000)
    assert a == _readings(7, 10_000)
    b = _readings(8, 10_000)
    assert a != b
    # the noise is the only difference: the underlying trajectories agree closely
    assert a[-1][0] == pytest.approx(b[-1][0], abs=0.2)


def test_noise_can_be_switched_off() -> None:
    assert _readings(1, 50, noise=False) == _readings(2, 50, noise=False)


def test_snapshot_is_json_and_restored_driver_continues_identically() -> None:
    faults = [{"kind": "stuck", "channel": "do", "start_s": 50.0, "duration_s": 100.0}]
    a, pa = make_driver(SENSORS, ACTUATORS, seed=11, faults=faults)
    run(a, pa, 100.0, dt=0.5, commands=COMMANDS)
    snap = json.loads(json.dumps(a.snapshot(), allow_nan=False))

    b, pb = make_driver(SENSORS, ACTUATORS, seed=999)
    b.restore(snap)
    for ch, p in pa.items():
        pb[ch].value = p.value
    ra = run(a, pa, 300.0, dt=0.5, start_s=100.0)
    rb = run(b, pb, 300.0, dt=0.5, start_s=100.0)
    assert ra == rb
    assert json.dumps(a.snapshot()) == json.dumps(b.snapshot())


def test_restore_rejects_other_plant() -> None:
    tank = SimDriver(name="t", options={"plant": "tank"})
    bio = SimDriver(name="b", options={})
    with pytest.raises(DriverError, match="plant 'tank', not 'bioreactor'"):
        bio.restore(tank.snapshot())


def test_tank_plant_through_the_driver() -> None:
    driver, pts = make_driver(
        ["level", "high_level"], ["inlet_valve"], plant="tank", initial={"level": 80.0}
    )
    rows = run(driver, pts, 120.0, commands={"inlet_valve": 100.0})
    assert rows[-1]["high_level"][0] is True
    assert rows[-1]["level"][0] > 89.0


def test_substep_cost_is_cheap() -> None:
    driver, pts = make_driver(SENSORS, ACTUATORS, max_step_s=0.1)
    for ch, value in COMMANDS.items():
        pts[ch].value = value
    driver.read_inputs(0)
    driver.write_outputs(0)
    t0 = time.perf_counter()
    driver.read_inputs(2_000 * 10**9)  # 2000 s = 20 000 substeps
    per_step = (time.perf_counter() - t0) / 20_000
    assert driver.statistics()["substeps"] == 20_000
    assert per_step < 100e-6, f"{per_step * 1e6:.1f} µs per substep"


def _values(pts: dict[str, Point]) -> dict[str, object]:
    return {ch: p.value for ch, p in pts.items() if p.direction is Direction.IN}


def test_a_second_read_at_the_same_instant_keeps_the_readings_and_draws_no_noise() -> None:
    once, p1 = make_driver(SENSORS, seed=5)
    twice, p2 = make_driver(SENSORS, seed=5)
    for k in range(20):
        once.read_inputs(k * 10**9)
        twice.read_inputs(k * 10**9)
        first = _values(p2)
        twice.read_inputs(k * 10**9)  # a second task released at the same instant
        assert _values(p2) == first
        assert _values(p1) == first  # same readings as a driver read once per instant


def test_a_fault_injected_at_the_same_instant_is_measured_at_once() -> None:
    driver, pts = make_driver(["ph"], seed=2)
    driver.read_inputs(10**9)
    assert pts["ph"].quality is Quality.GOOD
    driver.inject({"kind": "dropout", "channel": "ph"})
    driver.read_inputs(10**9)
    assert pts["ph"].quality is Quality.BAD
    driver.clear_faults()
    driver.read_inputs(10**9)
    assert pts["ph"].quality is Quality.GOOD


@pytest.mark.parametrize("faults", [[], [{"kind": "bias", "channel": "ph", "offset": 0.1}]])
def test_a_diverging_model_raises_a_driver_error_naming_channel_and_time(
    faults: list[dict[str, object]],
) -> None:
    # A 0.1 mL jacket makes explicit Euler at 1 s unstable: the temperatures blow up.
    driver, pts = make_driver(
        ["temperature", "jacket_temperature", "ph"],
        ["heating_valve"],
        params={"jacket_volume_l": 1e-4},
        faults=faults,
    )
    pts["heating_valve"].value = 50.0
    with pytest.raises(DriverError) as exc:
        for k in range(1000):
            driver.read_inputs(k * 10**9)
            driver.write_outputs(k * 10**9)
    text = str(exc.value)
    assert "bioreactor model diverged" in text
    assert "temperature' is" in text and "at plant time" in text

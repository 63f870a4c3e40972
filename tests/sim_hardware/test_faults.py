"""Fault injection: each sensor and actuator fault kind, schedules, runtime inject/clear."""

from __future__ import annotations

import statistics

import pytest
from pydantic import ValidationError

from hal import DriverError, Quality
from sim_hardware import Bias, Drift, Valve, ValveStuck, parse_fault

from .helpers import make_driver, run


def values(rows: list[dict[str, tuple[object, Quality]]], ch: str) -> list[float]:
    return [float(r[ch][0]) for r in rows]  # type: ignore[arg-type]


def test_fault_models_are_strict() -> None:
    assert isinstance(parse_fault({"kind": "bias", "channel": "ph", "offset": 0.1}), Bias)
    with pytest.raises(ValidationError):
        parse_fault({"kind": "bias", "channel": "ph", "offset": 0.1, "extra": 1})
    with pytest.raises(ValidationError):
        parse_fault({"kind": "drift", "channel": "ph", "rate": 1, "duration_s": 0})
    f = Drift(channel="ph", rate=0.1, start_s=10, duration_s=5)
    assert [f.active(t) for t in (9.9, 10.0, 14.9, 15.0)] == [False, True, True, False]


def test_stuck_freezes_reading_with_good_quality_then_recovers() -> None:
    fault = {"kind": "stuck", "channel": "temperature", "start_s": 60, "duration_s": 120}
    driver, pts = make_driver(["temperature"], ["heating_valve"], faults=[fault])
    rows = run(driver, pts, 400, commands={"heating_valve": 100.0})
    during = values(rows[61:180], "temperature")
    assert len(set(during)) == 1
    assert all(r["temperature"][1] is Quality.GOOD for r in rows)
    assert values(rows, "temperature")[-1] > during[0] + 1.0


def test_drift_and_bias_offset_the_reading() -> None:
    faults = [
        {"kind": "drift", "channel": "temperature", "rate": 0.01, "start_s": 100},
        {"kind": "bias", "channel": "ph", "offset": -0.3, "start_s": 0, "duration_s": 50},
    ]
    clean, cp = make_driver(["temperature", "ph"], [], noise=False)
    faulty, fp = make_driver(["temperature", "ph"], [], noise=False, faults=faults)
    a, b = run(clean, cp, 300), run(faulty, fp, 300)
    assert values(b, "ph")[10] == pytest.approx(values(a, "ph")[10] - 0.3)
    assert values(b, "ph")[60] == values(a, "ph")[60]
    assert values(b, "temperature")[100] == values(a, "temperature")[100]
    assert values(b, "temperature")[300] == pytest.approx(values(a, "temperature")[300] + 2.0)


def test_noise_burst_raises_the_scatter_for_its_duration() -> None:
    fault = {"kind": "noise_burst", "channel": "do", "std": 5.0, "start_s": 200, "duration_s": 200}
    driver, pts = make_driver(["do"], ["agitator", "air_valve"], seed=5, faults=[fault])
    rows = run(driver, pts, 600, commands={"agitator": 150.0, "air_valve": 100.0})
    do = values(rows, "do")
    diffs_burst = [do[i + 1] - do[i] for i in range(210, 390)]
    diffs_calm = [do[i + 1] - do[i] for i in range(410, 590)]
    assert statistics.stdev(diffs_burst) > 10 * statistics.stdev(diffs_calm)


def test_dropout_gives_bad_quality_and_keeps_last_value() -> None:
    fault = {"kind": "dropout", "channel": "ph", "start_s": 30, "duration_s": 30}
    driver, pts = make_driver(["ph", "do"], [], faults=[fault])
    rows = run(driver, pts, 100)
    assert [r["ph"][1] for r in rows[30:60]] == [Quality.BAD] * 30
    assert len({r["ph"][0] for r in rows[29:60]}) == 1
    assert rows[60]["ph"][1] is Quality.GOOD
    assert all(r["do"][1] is Quality.GOOD for r in rows)


def test_valve_stuck_closed_stops_heating() -> None:
    fault = ValveStuck(channel="heating_valve", position=0.0, start_s=0)
    driver, pts = make_driver(["temperature"], ["heating_valve"], faults=[fault.model_dump()])
    rows = run(driver, pts, 600, commands={"heating_valve": 100.0})
    assert values(rows, "temperature")[-1] < 25.5
    valve = driver.plant.actuator("heating_valve")
    assert isinstance(valve, Valve)
    assert valve.position == 0.0


def test_valve_stuck_in_place_keeps_position_after_command_changes() -> None:
    driver, pts = make_driver(["co2_flow"], ["co2_valve"], noise=False)
    run(driver, pts, 10, commands={"co2_valve": 50.0})
    driver.inject({"kind": "valve_stuck", "channel": "co2_valve", "start_s": 10})
    rows = run(driver, pts, 30, start_s=10, commands={"co2_valve": 0.0})
    assert values(rows, "co2_flow")[-1] == pytest.approx(1.0)  # 50 % of 2 L/min
    assert driver.clear_faults("co2_valve") == 1
    rows = run(driver, pts, 30, start_s=40)
    assert values(rows, "co2_flow")[-1] == 0.0


def test_pump_failed_no_flow_but_running_feedback() -> None:
    fault = {"kind": "pump_failed", "channel": "feed_pump", "start_s": 100}
    driver, pts = make_driver(
        ["feed_flow", "feed_pump_running", "volume"], ["feed_pump"], noise=False, faults=[fault]
    )
    rows = run(driver, pts, 400, commands={"feed_pump": 100.0})
    assert rows[50]["feed_flow"][0] == pytest.approx(2.0)
    assert rows[200]["feed_flow"][0] == 0.0
    assert rows[200]["feed_pump_running"][0] is True
    assert values(rows, "volume")[400] == pytest.approx(values(rows, "volume")[101], abs=1e-3)


def test_agitator_failure_stops_the_motor() -> None:
    fault = {"kind": "pump_failed", "channel": "agitator", "start_s": 60}
    driver, pts = make_driver(["agitator_speed"], ["agitator"], noise=False, faults=[fault])
    rows = run(driver, pts, 120, commands={"agitator": 150.0})
    assert rows[55]["agitator_speed"][0] == pytest.approx(150.0)
    assert rows[120]["agitator_speed"][0] == 0.0


def test_cooling_water_failure_and_recovery() -> None:
    initial = {"temperature": 40.0, "jacket_temperature": 40.0}
    fault = {"kind": "cooling_water_failure", "start_s": 0, "duration_s": 600}
    driver, pts = make_driver(
        ["temperature"], ["cooling_valve"], initial=initial, noise=False, faults=[fault]
    )
    rows = run(driver, pts, 1200, commands={"cooling_valve": 100.0})
    t = values(rows, "temperature")
    assert t[600] > 39.5
    assert t[1200] < t[600] - 2.0
    assert driver.plant.utility_ok["cooling_water"] is True


def test_scheduled_fault_waits_for_plant_time_and_clear_all() -> None:
    driver, pts = make_driver(["ph"], [], noise=False)
    run(driver, pts, 10)
    driver.inject(Bias(channel="ph", offset=1.0, start_s=20))
    rows = run(driver, pts, 20, start_s=10)
    assert rows[5]["ph"][0] == pytest.approx(7.3, abs=0.05)
    assert rows[-1]["ph"][0] == pytest.approx(8.3, abs=0.05)
    assert [f.kind for f in driver.active_faults()] == ["bias"]
    assert driver.clear_faults() == 1
    rows = run(driver, pts, 1, start_s=30)
    assert rows[-1]["ph"][0] == pytest.approx(7.3, abs=0.05)


def test_bool_sensors_accept_only_stuck_and_dropout() -> None:
    driver, _ = make_driver([], [])
    driver.inject({"kind": "stuck", "channel": "feed_pump_running"})
    driver.inject({"kind": "dropout", "channel": "feed_pump_running"})
    with pytest.raises(DriverError, match="BOOL sensor"):
        driver.inject({"kind": "bias", "channel": "feed_pump_running", "offset": 1})

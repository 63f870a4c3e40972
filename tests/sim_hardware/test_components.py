"""Valves, pumps and the agitator motor: rate limits, feedback, failure modes."""

from __future__ import annotations

import math

import pytest

from sim_hardware import Motor, Pump, Valve


def test_valve_follows_command_at_stroke_speed() -> None:
    v = Valve(max_flow=10.0, stroke_time_s=10.0)
    v.set(100.0)
    v.step(2.0)
    assert v.position == pytest.approx(20.0)
    v.step(100.0)
    assert v.position == 100.0
    assert v.flow() == pytest.approx(10.0)
    v.set(50.0)
    v.step(1.0)
    assert v.position == pytest.approx(90.0)


def test_valve_clamps_command_and_treats_nan_as_closed() -> None:
    v = Valve(max_flow=1.0, stroke_time_s=0.0)
    v.set(150.0)
    v.step(0.1)
    assert v.position == 100.0
    v.set(-5.0)
    v.step(0.1)
    assert v.position == 0.0
    v.set(math.nan)
    assert v.command == 0.0


def test_stuck_valve_ignores_command() -> None:
    v = Valve(max_flow=1.0, stroke_time_s=1.0)
    v.set(30.0)
    v.step(10.0)
    v.stuck = True
    v.set(90.0)
    v.step(10.0)
    assert v.position == pytest.approx(30.0)


def test_pump_ramps_and_failed_pump_delivers_nothing_but_reports_running() -> None:
    p = Pump(max_flow=20.0, ramp_s=2.0)
    p.set(100.0)
    p.step(1.0)
    assert p.flow() == pytest.approx(10.0)
    assert p.running
    p.failed = True
    p.step(5.0)
    assert p.flow() == 0.0
    assert p.running


def test_motor_ramps_and_stops_when_failed() -> None:
    m = Motor(max_rpm=300.0, ramp_rpm_s=10.0)
    m.set(500.0)
    assert m.command == 300.0
    m.step(5.0)
    assert m.speed == pytest.approx(50.0)
    m.failed = True
    m.step(100.0)
    assert m.speed == 0.0


def test_component_snapshot_round_trip() -> None:
    v = Valve(max_flow=1.0)
    v.set(40.0)
    v.step(1.0)
    w = Valve(max_flow=1.0)
    w.restore(v.snapshot())
    assert w.snapshot() == v.snapshot()

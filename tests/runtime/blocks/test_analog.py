"""RAMP, HYSTERESIS, LIMIT and SCALE."""

from __future__ import annotations

import pytest

from runtime.blocks import HYSTERESIS, LIMIT, RAMP, SCALE
from tests.runtime.blocks.helpers import VClock


def test_ramp_first_scan_starts_at_in():
    r = RAMP(RATE_UP=1.0, RATE_DOWN=1.0)
    r(VClock().at(0), IN=42.0)
    assert (r.OUT, r.BUSY) == (42.0, False)


def test_ramp_rates_up_and_down():
    r, clock = RAMP(RATE_UP=2.0, RATE_DOWN=5.0), VClock()
    r(clock.at(0), IN=0.0)
    r(clock.at(1000), IN=10.0)
    assert (r.OUT, r.BUSY) == (2.0, True)
    r(clock.at(5000))
    assert (r.OUT, r.BUSY) == (10.0, False)  # reaches IN without overshoot
    r(clock.at(6000), IN=0.0)
    assert r.OUT == 5.0
    r(clock.at(8000))
    assert (r.OUT, r.BUSY) == (0.0, False)


def test_ramp_zero_rate_means_unlimited():
    r, clock = RAMP(RATE_UP=0.0, RATE_DOWN=1.0), VClock()
    r(clock.at(0), IN=0.0)
    r(clock.at(100), IN=50.0)
    assert r.OUT == 50.0
    r(clock.at(200), IN=0.0)
    assert r.OUT == pytest.approx(49.9)


def test_ramp_reset_follows_in_and_set_forces_value():
    r, clock = RAMP(RATE_UP=1.0, RATE_DOWN=1.0), VClock()
    r(clock.at(0), IN=0.0)
    r(clock.at(100), IN=100.0, RESET=True)
    assert (r.OUT, r.BUSY) == (100.0, False)
    r(clock.at(200), IN=0.0, RESET=False, SET=True, SET_VAL=30.0)
    assert (r.OUT, r.BUSY) == (30.0, True)
    r(clock.at(1200), SET=False)
    assert r.OUT == pytest.approx(29.0)
    r(clock.at(1300), SET=True, RESET=True)
    assert r.OUT == 0.0  # RESET has priority over SET


def test_ramp_dt_zero_does_not_move():
    r, clock = RAMP(RATE_UP=1.0, RATE_DOWN=1.0), VClock()
    r(clock.at(0), IN=0.0)
    r(clock.at(0), IN=10.0)
    assert r.OUT == 0.0 and r.BUSY


def test_hysteresis():
    h, clock = HYSTERESIS(HIGH=10.0, LOW=5.0), VClock()
    seq = [(7.0, False), (10.0, False), (10.5, True), (6.0, True), (5.0, True), (4.9, False)]
    for x, q in seq:
        h(clock.step(1), IN=x)
        assert h.Q == q, x


@pytest.mark.parametrize(("mn", "x", "mx", "out"), [(0, 5, 10, 5), (0, -1, 10, 0), (0, 11, 10, 10)])
def test_limit(mn, x, mx, out):
    b = LIMIT(MN=mn, IN=x, MX=mx)
    b(VClock().at(0))
    assert b.OUT == out


def test_scale_linear_inverted_and_clamped():
    s, ctx = SCALE(IN_MIN=4.0, IN_MAX=20.0, OUT_MIN=0.0, OUT_MAX=100.0), VClock().at(0)
    s(ctx, IN=12.0)
    assert s.OUT == 50.0
    s(ctx, IN=24.0)
    assert s.OUT == 125.0
    s(ctx, CLAMP=True)
    assert s.OUT == 100.0
    s(ctx, OUT_MIN=100.0, OUT_MAX=0.0, IN=2.0)
    assert (s.OUT, s.ERROR) == (100.0, False)
    s(ctx, IN=8.0)
    assert s.OUT == 75.0


def test_scale_zero_span_sets_error_instead_of_dividing():
    s = SCALE(IN_MIN=1.0, IN_MAX=1.0, OUT_MIN=3.0, OUT_MAX=9.0, IN=1.0)
    s(VClock().at(0))
    assert (s.OUT, s.ERROR) == (3.0, True)

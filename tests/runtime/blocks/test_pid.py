"""PID: action sign, derivative on PV, anti-windup, bumpless modes, snapshot continuity, dt=0."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.blocks import PID
from tests.runtime.blocks.helpers import VClock

DT_MS = 100


class Heater:
    """First-order plant: PV rises with OUT (gain K, time constant TAU s) from ambient."""

    def __init__(
        self, pv: float = 20.0, k: float = 1.0, tau: float = 20.0, sign: float = 1.0
    ) -> None:
        self.pv, self.ambient, self.k, self.tau, self.sign = pv, pv, k, tau, sign

    def step(self, out: float, dt: float) -> float:
        target = self.ambient + self.sign * self.k * out
        self.pv += (target - self.pv) * dt / self.tau
        return self.pv


def closed_loop(pid: PID, plant: Heater, seconds: float, clock: VClock | None = None) -> VClock:
    clock = clock or VClock()
    for _ in range(int(seconds * 1000 / DT_MS)):
        pid(clock.step(DT_MS), PV=plant.pv)
        plant.step(pid.OUT, DT_MS / 1000)
    return clock


def test_first_scan_dt_zero_no_integration_no_derivative():
    pid = PID(SP=50.0, KC=2.0, TI=10.0, TD=5.0)
    pid(VClock().at(0), PV=40.0)
    assert (pid.P, pid.I, pid.D) == (20.0, 0.0, 0.0)
    assert pid.OUT == 20.0


def test_dt_zero_later_does_not_divide_or_integrate():
    pid, clock = PID(SP=50.0, KC=1.0, TI=1.0, TD=1.0), VClock()
    pid(clock.at(0), PV=40.0)
    pid(clock.at(1000), PV=40.0)
    i = pid.I
    pid(clock.at(1000), PV=45.0)  # same time again: dt == 0
    assert pid.I == i
    assert math.isfinite(pid.D)


def test_reverse_action_out_rises_when_pv_below_sp():
    pid, clock = PID(SP=50.0, KC=1.0, TI=10.0), VClock()
    outs = []
    for k in range(5):
        pid(clock.at(k * 1000), PV=40.0)
        outs.append(pid.OUT)
    assert pid.ERR == 10.0
    assert outs == sorted(outs) and outs[-1] > outs[0] > 0


def test_direct_action_out_rises_when_pv_above_sp():
    pid, clock = PID(SP=50.0, KC=1.0, TI=10.0, DIRECT=True), VClock()
    pid(clock.at(0), PV=60.0)
    first = pid.OUT
    pid(clock.at(1000), PV=60.0)
    assert pid.ERR == 10.0 and pid.OUT > first > 0
    pid(clock.at(2000), PV=40.0)
    assert pid.P < 0


def test_closed_loop_reverse_heater_reaches_setpoint():
    pid, plant = PID(SP=60.0, KC=4.0, TI=15.0, OUT_MAX=100.0), Heater(pv=20.0)
    closed_loop(pid, plant, 300)
    assert plant.pv == pytest.approx(60.0, abs=0.05)
    assert pid.I == pytest.approx(40.0, abs=0.1)


def test_closed_loop_direct_cooler_reaches_setpoint():
    pid = PID(SP=10.0, KC=4.0, TI=15.0, DIRECT=True)
    plant = Heater(pv=20.0, sign=-1.0)
    closed_loop(pid, plant, 300)
    assert plant.pv == pytest.approx(10.0, abs=0.05)


def test_setpoint_step_gives_no_derivative_kick():
    pid, clock = PID(SP=50.0, KC=1.0, TD=10.0), VClock()
    pid(clock.at(0), PV=50.0)
    pid(clock.at(100), PV=50.0)
    pid(clock.at(200), SP=80.0)
    assert pid.D == 0.0
    assert pid.P == 30.0


def test_pv_step_derivative_sign_and_filter():
    pid, clock = PID(SP=50.0, KC=2.0, TD=1.0, N=10.0, OUT_MIN=-1e9, OUT_MAX=1e9), VClock()
    pid(clock.at(0), PV=50.0)
    pid(clock.at(100), PV=51.0)
    # backward Euler: D = Kc*Td*(-dPV) / (Td/N + dt) = 2*1*(-1)/(0.1+0.1)
    assert pid.D == pytest.approx(-10.0)
    pid(clock.at(200), PV=51.0)
    assert pid.D == pytest.approx(-5.0)  # decays with Tf/(Tf+dt)
    direct = PID(SP=50.0, KC=2.0, TD=1.0, DIRECT=True, OUT_MIN=-1e9, OUT_MAX=1e9)
    clock = VClock()
    direct(clock.at(0), PV=50.0)
    direct(clock.at(100), PV=51.0)
    assert direct.D == pytest.approx(10.0)


def test_parallel_form_matches_isa_form():
    isa = PID(SP=50.0, KC=2.0, TI=8.0, TD=3.0, N=8.0)
    par = PID(SP=50.0, FORM="PARALLEL", KP=2.0, KI=2.0 / 8.0, KD=2.0 * 3.0, N=8.0)
    clock = VClock()
    for k, pv in enumerate([40.0, 41.0, 43.0, 44.0, 48.0, 50.5, 51.0]):
        ctx = clock.at(k * 250)
        isa(ctx, PV=pv)
        par(ctx, PV=pv)
        assert par.OUT == pytest.approx(isa.OUT)
        assert (par.P, par.I, par.D) == pytest.approx((isa.P, isa.I, isa.D))


def test_unknown_form_is_an_error():
    with pytest.raises(ValueError, match="FORM"):
        PID(FORM="SERIES")(VClock().at(0))


def test_output_limits_and_limited_flag():
    pid, clock = PID(SP=100.0, KC=10.0, OUT_MIN=5.0, OUT_MAX=80.0), VClock()
    pid(clock.at(0), PV=0.0)
    assert (pid.OUT, pid.LIMITED) == (80.0, True)
    pid(clock.at(100), PV=200.0)
    assert (pid.OUT, pid.LIMITED) == (5.0, True)
    pid(clock.at(200), PV=99.0)
    assert (pid.OUT, pid.LIMITED) == (10.0, False)


def test_anti_windup_leaves_limit_when_error_reverses():
    pid, clock = PID(SP=80.0, KC=1.0, TI=5.0, OUT_MAX=100.0), VClock()
    t = 0
    for _ in range(10_000):  # 1000 s saturated high with a large positive error
        pid(clock.at(t), PV=20.0)
        t += DT_MS
    assert pid.OUT == 100.0
    assert pid.P + pid.I <= 100.0 + 1e-9  # integrator never wound past the limit
    pid(clock.at(t), PV=80.5)  # error reverses slightly
    assert pid.OUT < 100.0


def test_anti_windup_low_limit_too():
    pid, clock = PID(SP=0.0, KC=1.0, TI=5.0, OUT_MIN=0.0), VClock()
    for k in range(2000):
        pid(clock.at(k * DT_MS), PV=30.0)
    assert pid.OUT == 0.0 and pid.I >= -1e-9
    pid(clock.at(2000 * DT_MS), PV=-0.5)
    assert pid.OUT > 0.0


def test_integrator_not_clamped_by_p_alone():
    # While P alone saturates, the integrator holds instead of being pulled down.
    pid, clock = PID(SP=50.0, KC=1.0, TI=1.0), VClock()
    for k in range(20):
        pid(clock.at(k * 1000), PV=45.0)
    i_before = pid.I
    pid(clock.at(21_000), PV=-500.0)
    assert pid.OUT == 100.0 and pid.I == i_before


def test_bumpless_auto_to_manual_holds_out():
    pid, plant = PID(SP=60.0, KC=4.0, TI=15.0), Heater()
    clock = closed_loop(pid, plant, 200)
    held = pid.OUT
    assert 0.0 < held < 100.0
    assert pid.MAN_OUT == held  # MAN_OUT tracks OUT in auto
    pid(clock.step(DT_MS), MAN=True, PV=plant.pv + 3.0)
    assert pid.OUT == held and pid.MODE == "MAN"


def test_manual_out_written_takes_effect_clamped():
    pid, clock = PID(SP=60.0), VClock()
    pid(clock.at(0), PV=20.0)
    pid(clock.at(100), MAN=True, MAN_OUT=33.0)
    assert pid.OUT == 33.0
    pid(clock.at(200), MAN_OUT=150.0)
    assert pid.OUT == 100.0 and pid.LIMITED


def test_bumpless_manual_to_auto():
    pid, clock = PID(SP=60.0, KC=4.0, TI=15.0, TD=2.0), VClock()
    pid(clock.at(0), PV=30.0, MAN=True, MAN_OUT=42.0)
    for k in range(1, 20):
        pid(clock.at(k * DT_MS), PV=30.0 + 0.01 * k)  # PV drifts while in manual
    assert pid.OUT == 42.0
    manual_out = pid.OUT
    pid(clock.at(20 * DT_MS), MAN=False, PV=30.0 + 0.01 * 20)
    # only one cycle of integral action plus the P change of the last PV drift: no P step
    expected = 4.0 / 15.0 * pid.ERR * 0.1 - 4.0 * 0.01
    assert pid.OUT - manual_out == pytest.approx(expected, abs=0.02)


def test_bumpless_manual_to_auto_exact_with_steady_pv():
    pid, clock = PID(SP=60.0, KC=4.0, TI=0.0), VClock()  # no integral: I acts as manual reset
    pid(clock.at(0), PV=30.0, MAN=True, MAN_OUT=42.0)
    pid(clock.at(100))
    pid(clock.at(200), MAN=False)
    assert pid.OUT == pytest.approx(42.0)


def test_setpoint_tracking_in_manual_and_ramped_return():
    pid = PID(SP=60.0, KC=2.0, TI=10.0, SP_TRACK=True, SP_RATE=1.0)
    clock = VClock()
    pid(clock.at(0), PV=30.0, MAN=True, MAN_OUT=10.0)
    pid(clock.at(1000), PV=31.0)
    assert (pid.SP_W, pid.ERR, pid.P) == (31.0, 0.0, 0.0)
    pid(clock.at(2000), MAN=False)
    assert pid.SP_W == pytest.approx(32.0)  # ramps at SP_RATE from PV, no step to 60
    assert pid.OUT == pytest.approx(10.0 + 2.0 + 2.0 / 10.0 * 1.0)
    for k in range(3, 40):
        pid(clock.at(k * 1000))
    assert pid.SP_W == 60.0


def test_sp_rate_limits_setpoint_changes_in_auto():
    pid, clock = PID(SP=0.0, SP_RATE=2.0), VClock()
    pid(clock.at(0))
    pid(clock.at(1000), SP=10.0)
    assert pid.SP_W == 2.0
    pid(clock.at(2000), SP=-10.0)
    assert pid.SP_W == 0.0


def test_external_tracking_and_bumpless_return():
    pid, clock = PID(SP=50.0, KC=1.0, TI=5.0), VClock()
    pid(clock.at(0), PV=45.0, TRACK=True, TRACK_VAL=70.0)
    assert (pid.OUT, pid.MODE, pid.MAN_OUT) == (70.0, "TRACK", 70.0)
    pid(clock.at(100), TRACK=False)
    assert pid.OUT == pytest.approx(70.0 + 5.0 / 5.0 * 0.1)
    pid(clock.at(200), TRACK=True, MAN=True, TRACK_VAL=20.0)
    assert pid.MODE == "TRACK" and pid.OUT == 20.0
    pid(clock.at(300), TRACK=False)
    assert pid.MODE == "MAN" and pid.OUT == 20.0  # manual holds what tracking left


def test_feed_forward_adds_to_output():
    a, b, clock = PID(SP=50.0, KC=1.0), PID(SP=50.0, KC=1.0, FF=7.5), VClock()
    ctx = clock.at(0)
    a(ctx, PV=45.0)
    b(ctx, PV=45.0)
    assert b.OUT - a.OUT == 7.5


def test_nan_pv_holds_output_and_state():
    pid, clock = PID(SP=50.0, KC=1.0, TI=5.0, TD=1.0), VClock()
    pid(clock.at(0), PV=45.0)
    pid(clock.at(100), PV=45.0)
    before = pid.snapshot()
    pid(clock.at(200), PV=math.nan)
    assert pid.OUT == before["OUT"] and pid.I == before["I"]
    pid(clock.at(300), PV=47.0)  # no derivative across the bad gap
    assert pid.D == before["D"]


step = st.tuples(
    st.integers(min_value=0, max_value=500),  # dt ms (0 = repeated call)
    st.floats(min_value=0, max_value=100),  # SP
    st.floats(min_value=-50, max_value=150),  # PV
    st.sampled_from(["AUTO", "AUTO", "MAN", "TRACK"]),
    st.floats(min_value=-10, max_value=110),  # manual/track value
)


@settings(max_examples=150, deadline=None)
@given(
    seq=st.lists(step, min_size=2, max_size=60),
    cut=st.integers(min_value=0, max_value=59),
    form=st.sampled_from(["ISA", "PARALLEL"]),
    direct=st.booleans(),
    sp_track=st.booleans(),
)
def test_snapshot_restore_continues_identically(seq, cut, form, direct, sp_track):
    params = dict(
        FORM=form, KC=1.5, TI=4.0, TD=0.7, KP=0.8, KI=0.3, KD=0.2, DIRECT=direct,
        SP_TRACK=sp_track, SP_RATE=5.0, FF=1.0, OUT_MIN=-5.0, OUT_MAX=95.0,
    )  # fmt: skip
    cut = min(cut, len(seq) - 1)

    def drive(restart_at: int) -> list[Any]:
        pid, clock, ms, outs = PID(**params), VClock(), 0, []
        for i, (dt, sp, pv, mode, val) in enumerate(seq):
            if i == restart_at:
                fresh = PID()
                fresh.restore(json.loads(json.dumps(pid.snapshot())))
                pid = fresh
            ms += dt
            inputs = {"SP": sp, "PV": pv, "MAN": mode == "MAN", "TRACK": mode == "TRACK"}
            if mode == "MAN":
                inputs["MAN_OUT"] = val
            inputs["TRACK_VAL"] = val
            pid(clock.at(ms), **inputs)
            outs.append((pid.OUT, pid.P, pid.I, pid.D, pid.ERR, pid.SP_W))
        return outs

    assert drive(cut) == drive(-1)

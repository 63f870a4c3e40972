"""ALARM: limits with deadband, on-delay, latching, acknowledge, bad quality, snapshots."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.blocks import ALARM
from tests.runtime.blocks.helpers import VClock

LIMITS = {"HH": 90.0, "H": 80.0, "L": 20.0, "LL": 10.0}
ENABLED = {"HH_EN": True, "H_EN": True, "L_EN": True, "LL_EN": True}


def flags(a: ALARM) -> tuple[bool, bool, bool, bool]:
    return (a.HH_ACTIVE, a.H_ACTIVE, a.L_ACTIVE, a.LL_ACTIVE)


def test_disabled_by_default():
    a = ALARM(**LIMITS)
    a(VClock().at(0), IN=1000.0)
    assert not a.ACTIVE and a.SEVERITY == 0 and not a.UNACKED


def test_levels_and_severity():
    a, clock = ALARM(**LIMITS, **ENABLED), VClock()
    a(clock.step(1), IN=50.0)
    assert flags(a) == (False, False, False, False) and a.SEVERITY == 0
    a(clock.step(1), IN=85.0)
    assert flags(a) == (False, True, False, False) and a.SEVERITY == 1
    a(clock.step(1), IN=95.0)
    assert flags(a) == (True, True, False, False) and a.SEVERITY == 2
    a(clock.step(1), IN=15.0)
    assert flags(a) == (False, False, True, False) and a.SEVERITY == 1
    a(clock.step(1), IN=5.0)
    assert flags(a) == (False, False, True, True) and a.SEVERITY == 2 and a.ACTIVE


def test_limit_itself_is_not_an_alarm():
    a = ALARM(**LIMITS, **ENABLED)
    a(VClock().at(0), IN=80.0)
    assert not a.H_ACTIVE
    a(VClock().at(0), IN=20.0)
    assert not a.L_ACTIVE


def test_only_enabled_limits_alarm():
    a = ALARM(**LIMITS, H_EN=True)
    a(VClock().at(0), IN=95.0)
    assert flags(a) == (False, True, False, False)


def test_high_deadband():
    a, clock = ALARM(H=80.0, H_EN=True, DEADBAND=2.0), VClock()
    for x, active in [(81.0, True), (79.0, True), (78.01, True), (78.0, False), (79.9, False)]:
        a(clock.step(1), IN=x)
        assert a.H_ACTIVE == active, x


def test_low_deadband():
    a, clock = ALARM(L=20.0, L_EN=True, DEADBAND=2.0), VClock()
    for x, active in [(19.0, True), (21.9, True), (22.0, False), (20.5, False), (19.9, True)]:
        a(clock.step(1), IN=x)
        assert a.L_ACTIVE == active, x


def test_on_delay_requires_continuous_condition():
    a, clock = ALARM(H=80.0, H_EN=True, DELAY=2.0), VClock()
    a(clock.at(0), IN=85.0)
    a(clock.at(1999))
    assert not a.H_ACTIVE and not a.UNACKED
    a(clock.at(2000))
    assert a.H_ACTIVE and a.UNACKED
    a(clock.at(2100), IN=70.0)
    assert not a.H_ACTIVE  # clearing is immediate
    a(clock.at(3000), IN=85.0)
    a(clock.at(4000), IN=70.0)  # a blip shorter than DELAY
    a(clock.at(4100), IN=85.0)
    a(clock.at(5500))
    assert not a.H_ACTIVE
    a(clock.at(6100))
    assert a.H_ACTIVE


def test_unlatched_clears_but_stays_unacked_until_ack_edge():
    a, clock = ALARM(H=80.0, H_EN=True), VClock()
    a(clock.step(1), IN=85.0)
    a(clock.step(1), IN=50.0)
    assert (a.ACTIVE, a.UNACKED) == (False, True)
    a(clock.step(1), ACK=True)
    assert not a.UNACKED
    a(clock.step(1), IN=85.0)  # ACK still held: no new edge, new activation stays unacked
    assert (a.ACTIVE, a.UNACKED) == (True, True)
    a(clock.step(1), ACK=False)
    a(clock.step(1), ACK=True)
    assert (a.ACTIVE, a.UNACKED) == (True, False)


def test_latch_needs_clear_and_ack_in_either_order():
    a, clock = ALARM(H=80.0, H_EN=True, LATCH=True), VClock()
    a(clock.step(1), IN=85.0)
    a(clock.step(1), IN=50.0)
    assert (a.H_ACTIVE, a.UNACKED) == (True, True)  # latched: condition gone, not acked
    a.acknowledge()
    assert (a.H_ACTIVE, a.UNACKED) == (False, False)  # operator ack between cycles
    a(clock.step(1), IN=85.0)
    a(clock.step(1), ACK=True)  # acked while condition present: stays active
    assert (a.H_ACTIVE, a.UNACKED) == (True, False)
    a(clock.step(1), IN=50.0)
    assert not a.H_ACTIVE


def test_bad_quality_alarm_and_held_limits():
    a, clock = ALARM(H=80.0, H_EN=True, L=20.0, L_EN=True, DELAY=1.0), VClock()
    a(clock.at(0), IN=85.0)
    a(clock.at(1000))
    assert a.H_ACTIVE
    a(clock.at(1100), BAD=True, IN=50.0)
    assert a.BAD_ACTIVE and a.H_ACTIVE and a.SEVERITY == 2  # no delay; H held while bad
    a(clock.at(1200), BAD=False)
    assert not a.BAD_ACTIVE and not a.H_ACTIVE and a.UNACKED


def test_bad_restarts_pending_on_delay():
    a, clock = ALARM(L=20.0, L_EN=True, DELAY=1.0), VClock()
    a(clock.at(0), IN=10.0)
    a(clock.at(900), BAD=True)
    a(clock.at(1000), BAD=False)
    assert not a.L_ACTIVE
    a(clock.at(1999))
    assert not a.L_ACTIVE
    a(clock.at(2000))
    assert a.L_ACTIVE


def test_nan_input_counts_as_bad():
    a = ALARM(**LIMITS, **ENABLED)
    a(VClock().at(0), IN=math.nan)
    assert a.BAD_ACTIVE and flags(a) == (False, False, False, False)


def test_text_is_a_plain_input_kept_in_snapshot():
    a = ALARM(TEXT="TI-101 broth temperature")
    assert json.loads(json.dumps(a.snapshot()))["TEXT"] == "TI-101 broth temperature"


step = st.tuples(
    st.integers(min_value=0, max_value=800),
    st.floats(min_value=0, max_value=100),
    st.booleans(),  # ACK
    st.booleans(),  # BAD
)


@settings(max_examples=150, deadline=None)
@given(
    seq=st.lists(step, min_size=2, max_size=50),
    cut=st.integers(min_value=0, max_value=49),
    latch=st.booleans(),
)
def test_snapshot_restore_continues_identically(seq, cut, latch):
    cfg = dict(**LIMITS, **ENABLED, DEADBAND=3.0, DELAY=0.5, LATCH=latch)
    cut = min(cut, len(seq) - 1)

    def drive(restart_at: int) -> list[Any]:
        a, clock, ms, outs = ALARM(**cfg), VClock(), 0, []
        for i, (dt, x, ack, bad) in enumerate(seq):
            if i == restart_at:
                fresh = ALARM()
                fresh.restore(json.loads(json.dumps(a.snapshot())))
                a = fresh
            ms += dt
            a(clock.at(ms), IN=x, ACK=ack, BAD=bad)
            outs.append((*flags(a), a.BAD_ACTIVE, a.ACTIVE, a.UNACKED, a.SEVERITY))
        return outs

    assert drive(cut) == drive(-1)

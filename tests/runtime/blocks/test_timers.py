"""TON, TOF and TP against the IEC 61131-3 timing diagrams, on virtual time."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.blocks import TOF, TON, TP
from tests.runtime.blocks.helpers import VClock


def run(
    block: TON | TOF | TP, script: list[tuple[int, dict[str, Any]]]
) -> list[tuple[bool, float]]:
    """script: [(ms, inputs)] → [(Q, ET)] after each call."""
    clock = VClock()
    out = []
    for ms, inputs in script:
        block(clock.at(ms), **inputs)
        out.append((block.Q, block.ET))
    return out


# --- TON -------------------------------------------------------------------------------------


def test_ton_basic_cycle():
    ton = TON(PT=1.0)
    got = run(ton, [(0, {"IN": False}), (100, {"IN": True}), (600, {}), (1099, {}), (1100, {})])
    assert got == [(False, 0.0), (False, 0.0), (False, 0.5), (False, 0.999), (True, 1.0)]


def test_ton_et_clamps_at_pt_and_resets_when_in_falls():
    ton = TON(PT=0.5)
    got = run(ton, [(0, {"IN": True}), (500, {}), (5000, {}), (5010, {"IN": False})])
    assert got == [(False, 0.0), (True, 0.5), (True, 0.5), (False, 0.0)]


def test_ton_in_true_on_first_scan_starts_timing_then():
    ton = TON(IN=True, PT=0.2)
    got = run(ton, [(1000, {}), (1100, {}), (1200, {})])
    assert got == [(False, 0.0), (False, 0.1), (True, 0.2)]


def test_ton_interrupted_input_restarts_timing():
    ton = TON(PT=1.0)
    got = run(ton, [(0, {"IN": True}), (900, {"IN": False}), (1000, {"IN": True}), (1900, {})])
    assert got[-1] == (False, 0.9)


def test_ton_pt_zero_fires_on_the_edge_scan():
    assert run(TON(PT=0.0), [(0, {"IN": True})]) == [(True, 0.0)]


def test_ton_pt_shortened_while_timing_fires_at_once():
    ton = TON(PT=10.0)
    got = run(ton, [(0, {"IN": True}), (3000, {}), (3010, {"PT": 2.0})])
    assert got == [(False, 0.0), (False, 3.0), (True, 2.0)]


def test_ton_pt_lengthened_while_timing_extends_delay():
    ton = TON(PT=1.0)
    got = run(ton, [(0, {"IN": True}), (800, {"PT": 2.0}), (1500, {}), (2000, {})])
    assert got == [(False, 0.0), (False, 0.8), (False, 1.5), (True, 2.0)]


def test_ton_pt_lengthened_after_done_stays_done_et_reads_pt():
    ton = TON(PT=1.0)
    got = run(ton, [(0, {"IN": True}), (1000, {}), (1100, {"PT": 5.0})])
    assert got[-1] == (True, 5.0)


def test_ton_exact_at_non_binary_times():
    # 5.1 - 0.1 is 4.999999999999999 in floats; integer ns start times avoid a late cycle.
    ton = TON(PT=5.0)
    assert run(ton, [(100, {"IN": True}), (5100, {})])[-1] == (True, 5.0)


# --- TOF -------------------------------------------------------------------------------------


def test_tof_first_scan_in_false_is_no_falling_edge():
    assert run(TOF(PT=1.0), [(0, {"IN": False}), (2000, {})]) == [(False, 0.0), (False, 0.0)]


def test_tof_basic_cycle_and_et_hold():
    tof = TOF(PT=1.0)
    script = [
        (0, {"IN": True}),
        (100, {"IN": False}),
        (600, {}),
        (1099, {}),
        (1100, {}),
        (3000, {}),
        (3100, {"IN": True}),
    ]
    got = run(tof, script)
    assert got == [
        (True, 0.0),
        (True, 0.0),
        (True, 0.5),
        (True, 0.999),
        (False, 1.0),
        (False, 1.0),
        (True, 0.0),
    ]


def test_tof_in_back_true_during_delay_cancels_it():
    tof = TOF(PT=1.0)
    got = run(tof, [(0, {"IN": True}), (100, {"IN": False}), (500, {"IN": True}), (5000, {})])
    assert got[-2:] == [(True, 0.0), (True, 0.0)]
    got = run(tof, [(6000, {"IN": False}), (6900, {}), (7000, {})])
    assert got == [(True, 0.0), (True, 0.9), (False, 1.0)]


def test_tof_pt_changed_while_timing():
    shorter = run(TOF(PT=10.0), [(0, {"IN": True}), (0, {"IN": False}), (3000, {"PT": 2.0})])
    assert shorter[-1] == (False, 2.0)
    longer = run(TOF(PT=1.0), [(0, {"IN": True}), (0, {"IN": False}), (900, {"PT": 3.0})])
    assert longer[-1] == (True, 0.9)


def test_tof_expired_stays_off_when_pt_lengthened():
    tof = TOF(PT=1.0)
    got = run(tof, [(0, {"IN": True}), (0, {"IN": False}), (1000, {}), (1100, {"PT": 9.0})])
    assert got[-1] == (False, 9.0)


# --- TP --------------------------------------------------------------------------------------


def test_tp_pulse_and_et_after_pulse():
    tp = TP(PT=1.0)
    script = [
        (0, {"IN": False}),
        (100, {"IN": True}),
        (600, {}),
        (1100, {}),
        (1500, {}),
        (1600, {"IN": False}),
    ]
    got = run(tp, script)
    assert got == [
        (False, 0.0),
        (True, 0.0),
        (True, 0.5),
        (False, 1.0),
        (False, 1.0),
        (False, 0.0),
    ]


def test_tp_short_input_still_gives_full_pulse():
    tp = TP(PT=1.0)
    got = run(tp, [(0, {"IN": True}), (100, {"IN": False}), (999, {}), (1000, {})])
    assert got == [(True, 0.0), (True, 0.1), (True, 0.999), (False, 0.0)]


def test_tp_not_retriggerable():
    tp = TP(PT=1.0)
    script = [
        (0, {"IN": True}),
        (200, {"IN": False}),
        (400, {"IN": True}),  # edge during the pulse: ignored
        (1000, {}),  # pulse ends after PT from the first edge
        (1400, {}),  # IN still TRUE from the ignored edge: no new pulse
        (1500, {"IN": False}),
        (1600, {"IN": True}),  # a new edge after the pulse: new pulse
    ]
    got = run(tp, script)
    assert [q for q, _ in got] == [True, True, True, False, False, False, True]
    assert got[3] == (False, 1.0)


def test_tp_first_scan_in_true_is_rising_edge():
    assert run(TP(IN=True, PT=0.5), [(0, {})]) == [(True, 0.0)]


def test_tp_pt_changed_during_pulse():
    shorter = run(TP(PT=5.0), [(0, {"IN": True}), (2000, {"PT": 1.0})])
    assert shorter[-1] == (False, 1.0)
    longer = run(TP(PT=1.0), [(0, {"IN": True}), (900, {"PT": 2.0}), (1500, {}), (2000, {})])
    assert [q for q, _ in longer] == [True, True, True, False]


# --- snapshot/restore ------------------------------------------------------------------------

steps = st.lists(
    st.tuples(st.integers(min_value=0, max_value=400), st.booleans(), st.sampled_from([0.3, 1.0])),
    min_size=2,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    script=steps, cut=st.integers(min_value=0, max_value=39), kind=st.sampled_from([TON, TOF, TP])
)
def test_timer_snapshot_restore_continues_identically(script, cut, kind):
    cut = min(cut, len(script) - 1)
    ref, clock = kind(), VClock()
    ms = 0
    ref_out, times = [], []
    for dt, inp, pt in script:
        ms += dt
        times.append((ms, inp, pt))
        ref(clock.at(ms), IN=inp, PT=pt)
        ref_out.append((ref.Q, ref.ET))
    a, clock = kind(), VClock()
    got = []
    for i, (ms, inp, pt) in enumerate(times):
        if i == cut:
            b = kind()
            b.restore(json.loads(json.dumps(a.snapshot())))
            a = b
        a(clock.at(ms), IN=inp, PT=pt)
        got.append((a.Q, a.ET))
    assert got == ref_out

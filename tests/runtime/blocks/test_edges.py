"""R_TRIG and F_TRIG, including the deliberate IEC edition-2/3 first-call behaviour of F_TRIG."""

from __future__ import annotations

from runtime.blocks import F_TRIG, R_TRIG
from tests.runtime.blocks.helpers import VClock


def trace(block: R_TRIG | F_TRIG, clks: list[bool]) -> list[bool]:
    clock, out = VClock(), list[bool]()
    for clk in clks:
        block(clock.step(1), CLK=clk)
        out.append(block.Q)
    return out


def test_r_trig_one_scan_pulse_per_rising_edge():
    assert trace(R_TRIG(), [False, True, True, False, True]) == [False, True, False, False, True]


def test_r_trig_first_scan_clk_true_is_an_edge():
    assert trace(R_TRIG(), [True, True]) == [True, False]


def test_f_trig_one_scan_pulse_per_falling_edge():
    t = F_TRIG()
    assert trace(t, [True, False, False, True, False]) == [False, True, False, False, True]


def test_f_trig_first_scan_clk_false_pulses_once_as_iec_edition_2():
    assert trace(F_TRIG(), [False, False, False]) == [True, False, False]


def test_f_trig_restored_memory_gives_no_startup_pulse():
    old = F_TRIG()
    trace(old, [True, False, False])
    new = F_TRIG()
    new.restore(old.snapshot())
    assert trace(new, [False]) == [False]

"""CTU, CTD and CTUD as IEC 61131-3 3rd edition defines them: edges, priorities, INT limits."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.blocks import CTD, CTU, CTUD
from runtime.core._fb import FunctionBlock
from tests.runtime.blocks.helpers import VClock


def pulse(block: FunctionBlock, name: str, n: int, clock: VClock, **extra: Any) -> None:
    for _ in range(n):
        block(clock.step(1), **{name: True}, **extra)
        block(clock.step(1), **{name: False}, **extra)


def test_ctu_counts_rising_edges_only_and_sets_q_at_pv():
    c, clock = CTU(PV=3), VClock()
    c(clock.step(1), CU=True)
    c(clock.step(1), CU=True)  # held TRUE: no second count
    assert (c.CV, c.Q) == (1, False)
    c(clock.step(1), CU=False)
    pulse(c, "CU", 2, clock)
    assert (c.CV, c.Q) == (3, True)
    pulse(c, "CU", 1, clock)
    assert (c.CV, c.Q) == (4, True)


def test_ctu_first_scan_cu_true_counts():
    c = CTU(CU=True, PV=1)
    c(VClock().at(0))
    assert (c.CV, c.Q) == (1, True)


def test_ctu_reset_has_priority_and_consumes_the_edge():
    c, clock = CTU(PV=1), VClock()
    pulse(c, "CU", 5, clock)
    c(clock.step(1), R=True, CU=True)
    assert (c.CV, c.Q) == (0, False)
    c(clock.step(1), R=False, CU=True)  # CU stayed TRUE: the edge was during R
    assert c.CV == 0


def test_ctu_saturates_at_pv_max():
    c, clock = CTU(PV=10), VClock()
    c.CV = CTU.PV_MAX - 1
    pulse(c, "CU", 3, clock)
    assert c.CV == CTU.PV_MAX == 32767


def test_ctd_load_count_down_and_q():
    c, clock = CTD(PV=2), VClock()
    c(clock.step(1), LD=True)
    assert (c.CV, c.Q) == (2, False)
    c(clock.step(1), LD=False)
    pulse(c, "CD", 1, clock)
    assert (c.CV, c.Q) == (1, False)
    pulse(c, "CD", 1, clock)
    assert (c.CV, c.Q) == (0, True)
    pulse(c, "CD", 1, clock)
    assert (c.CV, c.Q) == (-1, True)


def test_ctd_load_has_priority_over_count():
    c, clock = CTD(PV=5), VClock()
    c(clock.step(1), LD=True, CD=True)
    assert c.CV == 5


def test_ctd_saturates_at_pv_min():
    c, clock = CTD(), VClock()
    c.CV = CTD.PV_MIN + 1
    pulse(c, "CD", 3, clock)
    assert c.CV == CTD.PV_MIN == -32768


def test_ctud_up_down_and_outputs():
    c, clock = CTUD(PV=2), VClock()
    pulse(c, "CU", 2, clock)
    assert (c.CV, c.QU, c.QD) == (2, True, False)
    pulse(c, "CD", 2, clock)
    assert (c.CV, c.QU, c.QD) == (0, False, True)


def test_ctud_simultaneous_edges_no_change():
    c, clock = CTUD(PV=9), VClock()
    pulse(c, "CU", 3, clock)
    c(clock.step(1), CU=True, CD=True)
    assert c.CV == 3
    c(clock.step(1), CU=False, CD=True)  # CD held: no new edge
    assert c.CV == 3


def test_ctud_r_beats_ld_beats_count():
    c, clock = CTUD(PV=7), VClock()
    pulse(c, "CU", 3, clock)
    c(clock.step(1), R=True, LD=True, CU=True)
    assert c.CV == 0
    c(clock.step(1), R=False, LD=True, CU=False, CD=True)
    assert c.CV == 7
    c(clock.step(1), LD=False, CD=False)
    assert (c.CV, c.QU) == (7, True)


def test_ctud_saturates_both_ends():
    c, clock = CTUD(PV=0), VClock()
    c.CV = CTUD.PV_MAX
    pulse(c, "CU", 2, clock)
    assert c.CV == CTUD.PV_MAX
    c.CV = CTUD.PV_MIN
    pulse(c, "CD", 2, clock)
    assert c.CV == CTUD.PV_MIN


def test_load_clamps_out_of_range_pv_to_int_limits():
    c, clock = CTD(PV=100_000), VClock()
    c(clock.step(1), LD=True)
    assert c.CV == CTD.PV_MAX


bools = st.booleans()


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(min_value=-32768, max_value=32767),
    pv=st.integers(min_value=-32768, max_value=32767),
    seq=st.lists(st.tuples(bools, bools, bools, bools), max_size=60),
)
def test_counters_never_leave_int_limits(start, pv, seq):
    ctu, ctd, ctud, clock = CTU(PV=pv), CTD(PV=pv), CTUD(PV=pv), VClock()
    ctu.CV = ctd.CV = ctud.CV = start
    for cu, cd, r, ld in seq:
        ctx = clock.step(1)
        ctu(ctx, CU=cu, R=r)
        ctd(ctx, CD=cd, LD=ld)
        ctud(ctx, CU=cu, CD=cd, R=r, LD=ld)
        for c in (ctu, ctd, ctud):
            assert -32768 <= c.CV <= 32767
        assert ctu.Q == (ctu.CV >= pv)
        assert ctd.Q == (ctd.CV <= 0)
        assert (ctud.QU, ctud.QD) == (ctud.CV >= pv, ctud.CV <= 0)


@settings(max_examples=100, deadline=None)
@given(seq=st.lists(st.tuples(bools, bools), max_size=60))
def test_ctud_counts_edges_exactly(seq):
    c, clock = CTUD(PV=0), VClock()
    expected, pu, pd = 0, False, False
    for cu, cd in seq:
        c(clock.step(1), CU=cu, CD=cd)
        up, down = cu and not pu, cd and not pd
        pu, pd = cu, cd
        expected += int(up and not down) - int(down and not up)
        assert c.CV == expected

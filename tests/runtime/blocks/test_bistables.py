"""SR (set dominant) and RS (reset dominant), full truth tables."""

from __future__ import annotations

import itertools

import pytest

from runtime.blocks import RS, SR
from tests.runtime.blocks.helpers import VClock


@pytest.mark.parametrize(("q", "s", "r"), list(itertools.product([False, True], repeat=3)))
def test_sr_truth_table(q, s, r):
    b = SR(S1=s, R=r)
    b.Q1 = q
    b(VClock().at(0))
    assert b.Q1 == (s or (q and not r))


@pytest.mark.parametrize(("q", "s", "r"), list(itertools.product([False, True], repeat=3)))
def test_rs_truth_table(q, s, r):
    b = RS(S=s, R1=r)
    b.Q1 = q
    b(VClock().at(0))
    assert b.Q1 == ((s or q) and not r)


def test_simultaneous_set_reset_dominance():
    sr, rs, clock = SR(), RS(), VClock()
    ctx = clock.step(1)
    sr(ctx, S1=True, R=True)
    rs(ctx, S=True, R1=True)
    assert (sr.Q1, rs.Q1) == (True, False)


def test_latches_hold_after_inputs_drop():
    sr, rs, clock = SR(), RS(), VClock()
    sr(clock.step(1), S1=True)
    rs(clock.ctx, S=True)
    sr(clock.step(1), S1=False)
    rs(clock.ctx, S=False)
    assert (sr.Q1, rs.Q1) == (True, True)
    sr(clock.step(1), R=True)
    rs(clock.ctx, R1=True)
    assert (sr.Q1, rs.Q1) == (False, False)

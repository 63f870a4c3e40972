"""ISA-88 PHASE: every legal transition, refused commands reported, state time, CMD input."""

from __future__ import annotations

import json

import pytest

from runtime.blocks import (
    ABORT,
    ABORTED,
    ABORTING,
    COMMANDS,
    COMPLETE,
    HELD,
    HOLD,
    HOLDING,
    IDLE,
    PHASE,
    PHASE_STATES,
    RESET,
    RESTART,
    RESTARTING,
    RUNNING,
    START,
    STOP,
    STOPPED,
    STOPPING,
    CommandResult,
    PhaseCommand,
    PhaseState,
)
from tests.runtime.blocks.helpers import VClock

# How to reach each state from a fresh phase: commands and done-inputs, one cycle each.
PATHS = {
    IDLE: [],
    RUNNING: [START],
    COMPLETE: [START, "DONE"],
    HOLDING: [START, HOLD],
    HELD: [START, HOLD, "HOLD_DONE"],
    RESTARTING: [START, HOLD, "HOLD_DONE", RESTART],
    STOPPING: [START, STOP],
    STOPPED: [START, STOP, "STOP_DONE"],
    ABORTING: [START, ABORT],
    ABORTED: [START, ABORT, "ABORT_DONE"],
}

LEGAL = {
    (IDLE, START): RUNNING,
    (RUNNING, HOLD): HOLDING,
    (HELD, RESTART): RESTARTING,
    **{(s, STOP): STOPPING for s in (RUNNING, HOLDING, HELD, RESTARTING)},
    **{(s, ABORT): ABORTING for s in PHASE_STATES if s not in (IDLE, ABORTING, ABORTED)},
    **{(s, RESET): IDLE for s in (COMPLETE, STOPPED, ABORTED)},
}


def reach(state: str) -> tuple[PHASE, VClock]:
    ph, clock = PHASE(), VClock()
    ph(clock.step(10))
    for step in PATHS[state]:
        if step in COMMANDS:
            ph(clock.step(10), CMD=step)
        else:
            ph(clock.step(10), **{step: True})
            ph(clock.step(10), **{step: False})
    assert ph.STATE_NAME == state
    return ph, clock


@pytest.mark.parametrize("state", PHASE_STATES)
def test_every_state_reachable(state):
    ph, _ = reach(state)
    assert ph.state == state


@pytest.mark.parametrize(("state", "cmd"), sorted(LEGAL))
def test_legal_command(state, cmd):
    ph, _ = reach(state)
    res = ph.command(cmd)
    assert res == CommandResult(True, "", state, LEGAL[state, cmd])
    assert ph.STATE_NAME == LEGAL[state, cmd] and ph.LAST_CMD == cmd
    assert ph.REFUSED_COUNT == 0


ILLEGAL = [(s, c) for s in PHASE_STATES for c in COMMANDS if (s, c) not in LEGAL]


def test_illegal_table_covers_the_examples():
    assert (IDLE, HOLD) in ILLEGAL and (RUNNING, RESTART) in ILLEGAL
    assert len(ILLEGAL) + len(LEGAL) == len(PHASE_STATES) * len(COMMANDS)


@pytest.mark.parametrize(("state", "cmd"), ILLEGAL)
def test_illegal_command_refused_and_reported(state, cmd):
    ph, _ = reach(state)
    res = ph.command(cmd)
    assert not res.accepted and res.state_before == res.state_after == state
    assert ph.STATE_NAME == state
    assert ph.REFUSED_COUNT == 1
    assert cmd in ph.LAST_REFUSED and state in ph.LAST_REFUSED and res.reason in ph.LAST_REFUSED


@pytest.mark.parametrize("cmd", ["PAUSE", "", "jump"])
def test_unknown_command_refused(cmd):
    ph = PHASE()
    res = ph.command(cmd)
    assert not res.accepted and "unknown" in res.reason
    assert ph.REFUSED_COUNT == 1 and "unknown" in ph.LAST_REFUSED


def test_cmd_input_consumed_once_and_refusal_counted():
    ph, clock = PHASE(), VClock()
    ph(clock.step(10), CMD="hold")  # lower case is normalised; illegal in IDLE
    assert (ph.CMD, ph.STATE_NAME, ph.REFUSED_COUNT) == ("", IDLE, 1)
    assert "HOLD" in ph.LAST_REFUSED
    ph(clock.step(10), CMD="start")
    assert (ph.CMD, ph.STATE_NAME) == ("", RUNNING)
    ph(clock.step(10))
    assert ph.REFUSED_COUNT == 1 and ph.STATE_NAME == RUNNING


@pytest.mark.parametrize(
    ("acting", "done", "after"),
    [
        (HOLDING, "HOLD_DONE", HELD),
        (RESTARTING, "RESTART_DONE", RUNNING),
        (STOPPING, "STOP_DONE", STOPPED),
        (ABORTING, "ABORT_DONE", ABORTED),
        (RUNNING, "DONE", COMPLETE),
    ],
)
def test_acting_states_wait_for_their_done_signal(acting, done, after):
    ph, clock = reach(acting)
    for _ in range(5):
        ph(clock.step(10))
    assert ph.STATE_NAME == acting
    ph(clock.step(10), **{done: True})
    assert ph.STATE_NAME == after and ph.STATE_ENTRY


@pytest.mark.parametrize(
    ("state", "cmd", "final"),
    [(RUNNING, HOLD, HELD), (HELD, RESTART, RUNNING), (RUNNING, STOP, STOPPED),
     (HELD, ABORT, ABORTED)],
)  # fmt: skip
def test_auto_complete_acting_takes_one_cycle(state, cmd, final):
    ph, clock = reach(state)
    ph(clock.step(10), CMD=cmd, AUTO_COMPLETE_ACTING=True)
    assert ph.ACTING and ph.STATE_ENTRY  # the logic sees the acting state once
    ph(clock.step(10))
    assert ph.STATE_NAME == final and not ph.ACTING


def test_auto_complete_does_not_complete_running():
    ph, clock = reach(RUNNING)
    ph(clock.step(10), AUTO_COMPLETE_ACTING=True)
    ph(clock.step(10))
    assert ph.STATE_NAME == RUNNING


def test_state_time_entry_flag_and_convenience_bools():
    ph, clock = PHASE(), VClock()
    ph(clock.at(0))
    assert (ph.STATE_ENTRY, ph.STATE_TIME, ph.IS_IDLE) == (True, 0.0, True)
    ph(clock.at(1500))
    assert (ph.STATE_ENTRY, ph.STATE_TIME) == (False, 1.5)
    ph.command(START)  # operator, between cycles
    assert ph.IS_RUNNING and not ph.IS_IDLE and ph.STATE_TIME == 0.0
    ph(clock.at(2000))
    assert (ph.STATE_ENTRY, ph.STATE_TIME) == (True, 0.0)
    ph(clock.at(4250))
    assert ph.STATE_TIME == 2.25
    ph(clock.at(4300), DONE=True)
    assert ph.IS_COMPLETE and ph.STATE_TIME == 0.0


def test_convenience_bools_match_state():
    for state in PHASE_STATES:
        ph, _ = reach(state)
        assert ph.IS_HELD == (state == HELD) and ph.IS_STOPPED == (state == STOPPED)
        assert ph.IS_ABORTED == (state == ABORTED)
        assert ph.ACTING == (state in (HOLDING, RESTARTING, STOPPING, ABORTING))


def test_snapshot_restore_keeps_state_and_clock():
    ph, clock = reach(HELD)
    ph(clock.step(1000))
    before = ph.STATE_TIME
    fresh = PHASE()
    fresh.restore(json.loads(json.dumps(ph.snapshot())))
    ctx = clock.step(500)
    ph(ctx)
    fresh(ctx)
    assert (fresh.STATE_NAME, fresh.STATE_TIME) == (ph.STATE_NAME, ph.STATE_TIME)
    assert fresh.STATE_NAME == HELD and fresh.STATE_TIME == pytest.approx(before + 0.5)


def test_enums_name_every_state_and_command_and_leave_the_state_a_plain_str():
    assert [str(s) for s in PhaseState] == list(PHASE_STATES)
    assert [str(c) for c in PhaseCommand] == list(COMMANDS)
    snaps = []
    for start, hold in ((PhaseCommand.START, PhaseCommand.HOLD), (START, HOLD)):
        ph, clock = reach(IDLE)
        assert ph.command(start).accepted
        assert ph.STATE_NAME == PhaseState.RUNNING
        ph(clock.step(10), CMD=hold)
        assert ph.STATE_NAME == PhaseState.HOLDING
        # What snapshots, retain files and the merge see is the plain name, as without enums.
        assert type(ph.STATE_NAME) is str and type(ph.LAST_CMD) is str
        snaps.append(json.dumps(ph.snapshot()))
    assert snaps[0] == snaps[1]


def test_the_compiled_phase_takes_enum_commands_like_the_python_one():
    """Apps pass ``PhaseCommand.START`` to CMD: a typed-str C attribute would refuse it."""
    from runtime.blocks._cy import python_blocks
    from runtime.core._fb import CycleContext

    for cls in {PHASE, python_blocks()["PHASE"]}:
        ph = cls()
        ph(CycleContext("t"), CMD=PhaseCommand.START)
        ph.CMD = PhaseCommand.HOLD
        ph(CycleContext("t"))
        assert ph.STATE_NAME == "HOLDING" and type(ph.LAST_CMD) is str

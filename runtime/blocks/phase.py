"""ISA-88 / PackML phase state machine PHASE, with refused commands reported, never dropped."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from runtime.core._fb import CycleContext, FunctionBlock

__all__ = [
    "ABORT",
    "ABORTED",
    "ABORTING",
    "COMMANDS",
    "COMPLETE",
    "HELD",
    "HOLD",
    "HOLDING",
    "IDLE",
    "PHASE",
    "PHASE_STATES",
    "RESET",
    "RESTART",
    "RESTARTING",
    "RUNNING",
    "START",
    "STOP",
    "STOPPED",
    "STOPPING",
    "CommandResult",
    "PhaseCommand",
    "PhaseState",
]

IDLE: Final = "IDLE"
RUNNING: Final = "RUNNING"
COMPLETE: Final = "COMPLETE"
HOLDING: Final = "HOLDING"
HELD: Final = "HELD"
RESTARTING: Final = "RESTARTING"
STOPPING: Final = "STOPPING"
STOPPED: Final = "STOPPED"
ABORTING: Final = "ABORTING"
ABORTED: Final = "ABORTED"
PHASE_STATES: Final = (
    IDLE,
    RUNNING,
    COMPLETE,
    HOLDING,
    HELD,
    RESTARTING,
    STOPPING,
    STOPPED,
    ABORTING,
    ABORTED,
)

START: Final = "START"
HOLD: Final = "HOLD"
RESTART: Final = "RESTART"
STOP: Final = "STOP"
ABORT: Final = "ABORT"
RESET: Final = "RESET"
COMMANDS: Final = (START, HOLD, RESTART, STOP, ABORT, RESET)


class PhaseState(StrEnum):
    """The states of PHASE. Members equal the names in STATE_NAME (``phase.STATE_NAME ==
    PhaseState.RUNNING``), which stays a plain str: snapshots and retain files are unchanged."""

    IDLE = "IDLE"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    HOLDING = "HOLDING"
    HELD = "HELD"
    RESTARTING = "RESTARTING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ABORTING = "ABORTING"
    ABORTED = "ABORTED"


class PhaseCommand(StrEnum):
    """The commands of PHASE (``phase.command(PhaseCommand.HOLD)``, or the CMD input)."""

    START = "START"
    HOLD = "HOLD"
    RESTART = "RESTART"
    STOP = "STOP"
    ABORT = "ABORT"
    RESET = "RESET"


# command -> {state it is legal in: state it leads to}
_TRANSITIONS: Final[dict[str, dict[str, str]]] = {
    START: {IDLE: RUNNING},
    HOLD: {RUNNING: HOLDING},
    RESTART: {HELD: RESTARTING},
    STOP: {s: STOPPING for s in (RUNNING, HOLDING, HELD, RESTARTING)},
    ABORT: {s: ABORTING for s in PHASE_STATES if s not in (IDLE, ABORTING, ABORTED)},
    RESET: {s: IDLE for s in (COMPLETE, STOPPED, ABORTED)},
}
_ACTING: Final = frozenset((HOLDING, RESTARTING, STOPPING, ABORTING))


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What became of a command: accepted or not, why, and the states around it."""

    accepted: bool
    reason: str
    state_before: str
    state_after: str


class PHASE(FunctionBlock):
    """ISA-88 phase states and commands; the phase logic reads STATE_NAME and reports *_DONE.

    (The current state is STATE_NAME, not STATE: ``STATE`` is the FunctionBlock's declaration
    of internal variables. The ``state`` property reads it too.)

    Commands come from ``command(name)`` (operators, between cycles; takes effect at once) or
    from the CMD input (consumed by the call, then cleared to ''). A refused command (unknown,
    or not legal in the current state) sets LAST_REFUSED and increments REFUSED_COUNT.

    Automatic transitions, decided from the call after a state was entered (so the logic sees
    every state, with STATE_ENTRY TRUE, for at least one cycle): RUNNING -> COMPLETE on DONE;
    HOLDING -> HELD on HOLD_DONE; RESTARTING -> RUNNING on RESTART_DONE; STOPPING -> STOPPED on
    STOP_DONE; ABORTING -> ABORTED on ABORT_DONE. With AUTO_COMPLETE_ACTING the acting states
    (HOLDING, RESTARTING, STOPPING, ABORTING) complete on their own after that one cycle.
    STATE_TIME is the ctx time spent in the current state.
    """

    INPUTS = {
        "CMD": "",
        "DONE": False,
        "HOLD_DONE": False,
        "RESTART_DONE": False,
        "STOP_DONE": False,
        "ABORT_DONE": False,
        "AUTO_COMPLETE_ACTING": False,
    }
    OUTPUTS = {
        "STATE_NAME": IDLE,
        "STATE_TIME": 0.0,
        "STATE_ENTRY": False,
        "IS_IDLE": True,
        "IS_RUNNING": False,
        "IS_COMPLETE": False,
        "IS_HELD": False,
        "IS_STOPPED": False,
        "IS_ABORTED": False,
        "ACTING": False,
        "LAST_CMD": "",
        "LAST_REFUSED": "",
        "REFUSED_COUNT": 0,
    }
    # PENDING: the state was entered since the last call; its clock (SINCE_NS, the app time
    # of the first call in the state) starts on the next. A flag, not a negative sentinel
    # stamp: a stamp re-based into a newer runtime's app time may well be negative.
    STATE = {"SINCE_NS": 0, "PENDING": True}
    CLOCK_VARS = ("SINCE_NS",)  # an app-time stamp: retained as an age (runtime.state)
    # Retain files written before PENDING existed marked it as SINCE_NS < 0.
    CLOCK_PENDING = {"SINCE_NS": "PENDING"}

    CMD: str
    DONE: bool
    HOLD_DONE: bool
    RESTART_DONE: bool
    STOP_DONE: bool
    ABORT_DONE: bool
    AUTO_COMPLETE_ACTING: bool
    STATE_NAME: str
    STATE_TIME: float
    STATE_ENTRY: bool
    IS_IDLE: bool
    IS_RUNNING: bool
    IS_COMPLETE: bool
    IS_HELD: bool
    IS_STOPPED: bool
    IS_ABORTED: bool
    ACTING: bool
    LAST_CMD: str
    LAST_REFUSED: str
    REFUSED_COUNT: int
    SINCE_NS: int
    PENDING: bool

    @property
    def state(self) -> str:
        """The current state name (same as STATE_NAME)."""
        return self.STATE_NAME

    def command(self, name: str) -> CommandResult:
        """Apply a command now; a refusal is returned and recorded in LAST_REFUSED."""
        cmd = name.strip().upper()
        before = self.STATE_NAME
        targets = _TRANSITIONS.get(cmd)
        if targets is None:
            return self._refuse(name, before, f"unknown command (known: {', '.join(COMMANDS)})")
        after = targets.get(before)
        if after is None:
            legal = ", ".join(targets)
            return self._refuse(cmd, before, f"not allowed in {before} (only in {legal})")
        self.LAST_CMD = cmd
        self._enter(after)
        return CommandResult(True, "", before, after)

    def execute(self, ctx: CycleContext) -> None:
        if self.CMD:
            cmd = self.CMD
            self.CMD = ""
            self.command(cmd)
        state = self.STATE_NAME
        now_ns: int = ctx.now_ns
        if self.PENDING:
            self.SINCE_NS = now_ns
            self.PENDING = False
            self.STATE_ENTRY = True
        else:
            self.STATE_ENTRY = False
            auto = self.AUTO_COMPLETE_ACTING
            nxt = ""
            if state == RUNNING:
                nxt = COMPLETE if self.DONE else ""
            elif state == HOLDING:
                nxt = HELD if self.HOLD_DONE or auto else ""
            elif state == RESTARTING:
                nxt = RUNNING if self.RESTART_DONE or auto else ""
            elif state == STOPPING:
                nxt = STOPPED if self.STOP_DONE or auto else ""
            elif state == ABORTING:
                nxt = ABORTED if self.ABORT_DONE or auto else ""
            if nxt:
                self._enter(nxt)
                self.SINCE_NS = now_ns
                self.PENDING = False
                self.STATE_ENTRY = True
        self.STATE_TIME = (now_ns - self.SINCE_NS) / 1e9

    def _refuse(self, cmd: str, state: str, reason: str) -> CommandResult:
        self.LAST_REFUSED = f"{cmd!r} refused in {state}: {reason}"
        self.REFUSED_COUNT += 1
        return CommandResult(False, reason, state, state)

    def _enter(self, state: str) -> None:
        self.STATE_NAME = state
        self.PENDING = True
        self.STATE_TIME = 0.0
        self.IS_IDLE = state == IDLE
        self.IS_RUNNING = state == RUNNING
        self.IS_COMPLETE = state == COMPLETE
        self.IS_HELD = state == HELD
        self.IS_STOPPED = state == STOPPED
        self.IS_ABORTED = state == ABORTED
        self.ACTING = state in _ACTING

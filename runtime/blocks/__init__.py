"""The standard function-block library: IEC 61131-3 blocks, PID, analogue, ALARM, ISA-88 PHASE."""

from runtime.blocks.alarm import ALARM, ALARM_KINDS
from runtime.blocks.analog import HYSTERESIS, LIMIT, RAMP, SCALE
from runtime.blocks.bistables import RS, SR
from runtime.blocks.counters import CTD, CTU, CTUD
from runtime.blocks.edges import F_TRIG, R_TRIG
from runtime.blocks.phase import (
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
)
from runtime.blocks.pid import PID, PID_FORMS
from runtime.blocks.timers import TOF, TON, TP

__all__ = [
    "ABORT",
    "ABORTED",
    "ABORTING",
    "ALARM",
    "ALARM_KINDS",
    "COMMANDS",
    "COMPLETE",
    "CTD",
    "CTU",
    "CTUD",
    "F_TRIG",
    "HELD",
    "HOLD",
    "HOLDING",
    "HYSTERESIS",
    "IDLE",
    "LIMIT",
    "PHASE",
    "PHASE_STATES",
    "PID",
    "PID_FORMS",
    "RAMP",
    "RESET",
    "RESTART",
    "RESTARTING",
    "RS",
    "RUNNING",
    "R_TRIG",
    "SCALE",
    "SR",
    "START",
    "STOP",
    "STOPPED",
    "STOPPING",
    "TOF",
    "TON",
    "TP",
    "CommandResult",
]

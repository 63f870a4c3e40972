"""The pure-Python standard blocks, whatever ``runtime.blocks`` selected (for parity tests)."""

from runtime.blocks.alarm import ALARM, ALARM_KINDS
from runtime.blocks.analog import HYSTERESIS, LIMIT, RAMP, SCALE
from runtime.blocks.bistables import RS, SR
from runtime.blocks.counters import CTD, CTU, CTUD
from runtime.blocks.edges import F_TRIG, R_TRIG
from runtime.blocks.phase import PHASE
from runtime.blocks.pid import PID, PID_FORMS
from runtime.blocks.timers import TOF, TON, TP

__all__ = [
    "ALARM",
    "ALARM_KINDS",
    "CTD",
    "CTU",
    "CTUD",
    "F_TRIG",
    "HYSTERESIS",
    "LIMIT",
    "PHASE",
    "PID",
    "PID_FORMS",
    "RAMP",
    "RS",
    "R_TRIG",
    "SCALE",
    "SR",
    "TOF",
    "TON",
    "TP",
]

"""The standard function-block library: IEC 61131-3 blocks, PID, analogue, ALARM, ISA-88 PHASE.

Each block is declared and written once, in its module here; at install time every block is
also compiled with Cython from that very source (runtime/blocks/_cy/_gen.py), with the same
names, ports, semantics and snapshots. This package exports the compiled classes when they
were built (and built from the current sources) and the pure-Python ones otherwise, or when
the environment variable ``VPLC_BLOCKS=python`` asks for them; ``IMPLEMENTATION`` says which
('cython' or 'python'). The pure-Python classes are always in ``runtime.blocks.pure``.
"""

import os

import structlog

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
    PhaseCommand,
    PhaseState,
)
from runtime.blocks.pid import PID, PID_FORMS
from runtime.blocks.timers import TOF, TON, TP

IMPLEMENTATION = "python"
# Why the pure-Python blocks are in use when Cython ones were expected ('' if not the case).
FALLBACK_REASON = ""
_logged = False

if os.environ.get("VPLC_BLOCKS", "").strip().lower() != "python":
    try:
        from runtime.blocks._cy import load as _load_cython

        globals().update(_load_cython())
        IMPLEMENTATION = "cython"
    except ImportError as _exc:
        FALLBACK_REASON = f"Cython blocks not usable: {_exc}"


def log_implementation() -> None:
    """Log, once per process, which block implementation runs (a warning on a fallback)."""
    global _logged
    if _logged:
        return
    _logged = True
    log = structlog.get_logger("vplc.blocks")
    if FALLBACK_REASON:
        log.warning("pure-Python function blocks in use", reason=FALLBACK_REASON)
    else:
        log.debug("function blocks", implementation=IMPLEMENTATION)


# Before the CLI has configured logging the warning would go to stdout: the loader then logs it.
if structlog.is_configured():
    log_implementation()

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
    "PhaseCommand",
    "PhaseState",
]

"""The public surface of runtime.blocks: what __all__ promises, and that blocks are plain data."""

from __future__ import annotations

import json

import runtime.blocks as blocks
from runtime.blocks._cy import python_blocks
from runtime.core._fb import FunctionBlock

# Besides every block (found in runtime/blocks, not listed here): the constants around them.
EXPECTED = {
    "PID_FORMS", "ALARM_KINDS", "PHASE_STATES", "COMMANDS", "CommandResult", "IDLE", "RUNNING",
    "COMPLETE", "HOLDING", "HELD", "RESTARTING", "STOPPING", "STOPPED", "ABORTING", "ABORTED",
    "START", "HOLD", "RESTART", "STOP", "ABORT", "RESET", "PhaseCommand", "PhaseState",
}  # fmt: skip
STANDARD = {
    "TON", "TOF", "TP", "CTU", "CTD", "CTUD", "R_TRIG", "F_TRIG", "SR", "RS", "PID", "RAMP",
    "HYSTERESIS", "LIMIT", "SCALE", "ALARM", "PHASE",
}  # fmt: skip


def test_all_is_exactly_the_public_api():
    assert STANDARD <= set(python_blocks())  # none of the standard blocks went missing
    assert set(blocks.__all__) == EXPECTED | set(python_blocks())
    for name in blocks.__all__:
        assert getattr(blocks, name) is not None


def block_classes() -> list[type[FunctionBlock]]:
    return [
        v for v in vars(blocks).values() if isinstance(v, type) and issubclass(v, FunctionBlock)
    ]


def test_every_block_snapshot_is_strict_json_and_restores():
    classes = block_classes()
    assert {c.__name__ for c in classes} == set(python_blocks())
    for cls in classes:
        snap = cls().snapshot()
        text = json.dumps(snap, allow_nan=False)
        again = cls()
        again.restore(json.loads(text))
        assert again.snapshot() == snap, cls.__name__


def test_every_variable_is_annotated_for_type_checkers():
    for cls in block_classes():
        annotated: set[str] = set()
        for klass in cls.__mro__:
            annotated.update(getattr(klass, "__annotations__", {}))
        missing = set(cls._VARS) - annotated
        assert not missing, (cls.__name__, missing)


def test_unknown_input_is_rejected():
    try:
        blocks.TON(IN=True, PTT=1.0)
    except TypeError as exc:
        assert "PTT" in str(exc)
    else:
        raise AssertionError("typo'd input accepted")

"""Block inputs wired to a point, parameter or global variable (``PID(PV=self.tt)``), both builds.

Parity of wired calls over random sequences is in test_parity.py; here: what a wire reads and
when, what it refuses, and that it is no state.
"""

from __future__ import annotations

import copy
import json
import pickle
import re
from typing import Any

import pytest

from hal import Direction, IecType, Point, PointSpec
from runtime.blocks._cy import load, python_blocks
from runtime.core._fb import CycleContext, FunctionBlock
from runtime.core._program import GlobalVar, Parameter
from runtime.core.manifest import GlobalSpec, ParameterSpec

try:
    from runtime.blocks._cy._base import Block

    CY = load()
except ImportError as exc:  # pragma: no cover - only without a compiler
    pytest.skip(f"Cython blocks not built: {exc}", allow_module_level=True)

BUILDS = {"python": python_blocks(), "cython": CY}


def point(name: str, iec: IecType = IecType.REAL, value: Any = 0.0) -> Point:
    pt = Point(PointSpec(name=name, type=iec, direction=Direction.IN, driver="d", channel=name))
    pt.value = value
    return pt


def ctx_at(ctx: CycleContext, ms: int) -> CycleContext:
    ctx.advance(ms * 1_000_000)
    return ctx


@pytest.fixture(params=sorted(BUILDS))
def lib(request: pytest.FixtureRequest) -> dict[str, type]:
    return BUILDS[request.param]


def test_a_wired_input_reads_its_source_at_every_call(lib: dict[str, type]) -> None:
    tt = point("TT101", value=30.0)
    sp = Parameter(ParameterSpec(name="temp_sp", default=37.0))
    pid = lib["PID"](PV=tt, SP=sp, KC=2.0)
    assert pid.PV == 0.0  # nothing is read before the first call
    ctx = CycleContext()
    pid.call(ctx_at(ctx, 0))
    assert (pid.PV, pid.SP, pid.OUT) == (30.0, 37.0, 14.0)
    tt.value, sp.value = 35.0, 36.0
    pid(ctx_at(ctx, 100))
    assert (pid.PV, pid.SP, pid.OUT) == (35.0, 36.0, 2.0)
    assert pid.wired() == {"PV": "TT101", "SP": "temp_sp"}


def test_read_wired_reads_without_executing(lib: dict[str, type]) -> None:
    tt = point("TT101", value=30.0)
    pid = lib["PID"](PV=tt, SP=40.0, KC=1.0)
    pid.read_wired()
    assert (pid.PV, pid.OUT) == (30.0, 0.0)
    lib["PID"]().read_wired()  # nothing wired: nothing to do


def test_a_keyword_wins_for_its_call_only(lib: dict[str, type]) -> None:
    tt = point("TT101", value=30.0)
    pid = lib["PID"](PV=tt, SP=40.0, KC=1.0)
    ctx = CycleContext()
    pid.call(ctx_at(ctx, 0), PV=39.0)
    assert (pid.PV, pid.OUT) == (39.0, 1.0)
    pid.call(ctx_at(ctx, 100))
    assert pid.PV == 30.0


def test_bool_and_global_sources(lib: dict[str, type]) -> None:
    start = point("XS1", IecType.BOOL, value=False)
    flag = GlobalVar(GlobalSpec(name="go", type=IecType.BOOL))
    ton, trig = lib["TON"](IN=start, PT=0.5), lib["R_TRIG"](CLK=flag)
    ctx = CycleContext()
    ton.call(ctx_at(ctx, 0))
    trig.call(ctx)
    start.value = flag.value = True
    ton.call(ctx_at(ctx, 100))
    trig.call(ctx)
    assert trig.Q and not ton.Q
    ton.call(ctx_at(ctx, 700))
    trig.call(ctx)
    assert ton.Q and not trig.Q


def test_a_wire_is_no_state(lib: dict[str, type]) -> None:
    tt = point("TT101", value=12.5)
    pid = lib["PID"](PV=tt)
    pid.call(ctx_at(CycleContext(), 0))
    snap = pid.snapshot()
    assert snap["PV"] == 12.5 and json.loads(json.dumps(snap)) == snap
    fresh = lib["PID"]()
    fresh.restore(snap)
    assert fresh.wired() == {} and fresh.PV == 12.5


def test_a_copy_is_unwired_and_keeps_the_state(lib: dict[str, type]) -> None:
    tt = point("TT101", value=12.5)
    pid = lib["PID"](PV=tt, KC=3.0)
    pid.call(ctx_at(CycleContext(), 0))
    for clone in (copy.copy(pid), copy.deepcopy(pid), pickle.loads(pickle.dumps(pid))):
        assert clone.wired() == {} and clone.snapshot() == pid.snapshot()
    assert pid.wired() == {"PV": "TT101"}


@pytest.mark.parametrize(
    ("block", "var", "iec", "expected"),
    [
        ("PID", "PV", IecType.BOOL, "PID.PV is float: it can be wired to a LREAL or REAL source"),
        ("PID", "PV", IecType.DINT, "not to 'X' (DINT); convert it in the program"),
        ("CTU", "PV", IecType.REAL, "CTU.PV is int: it can be wired to a DINT or INT source"),
        ("TON", "IN", IecType.REAL, "TON.IN is bool: it can be wired to a BOOL source"),
        ("PID", "FORM", IecType.REAL, "PID.FORM is str: it can be wired to a STRING source"),
    ],
)
def test_a_wire_of_another_iec_type_is_refused(
    lib: dict[str, type], block: str, var: str, iec: IecType, expected: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(expected)):
        lib[block](**{var: point("X", iec)})


def test_an_unknown_input_is_refused_source_or_not(lib: dict[str, type]) -> None:
    with pytest.raises(TypeError, match="PID has no input 'OUT'"):
        lib["PID"](OUT=point("X"))


class _OwnCall(FunctionBlock):
    INPUTS = {"IN": 0.0}
    OUTPUTS = {"OUT": 0.0}

    def __call__(self, ctx: CycleContext, **inputs: Any) -> None:
        self.OUT = inputs.get("IN", 0.0)


class _OwnCallCompiled(Block):
    INPUTS = {"IN": 0.0}
    _VARS = {"IN": 0.0}
    _INPUT_NAMES = frozenset({"IN"})


def test_a_block_with_its_own_call_refuses_wires_instead_of_ignoring_them() -> None:
    assert FunctionBlock.READS_WIRES and not _OwnCall.READS_WIRES
    for cls in (_OwnCall, _OwnCallCompiled):
        with pytest.raises(TypeError, match=r"IN: this block does not read wired inputs"):
            cls(IN=point("X"))
    assert _OwnCall(IN=1.0).IN == 1.0  # values, as ever

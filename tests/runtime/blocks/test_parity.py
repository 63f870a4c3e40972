"""Cython blocks against the pure-Python ones: identical outputs and snapshots, bit for bit.

Every block of runtime/blocks is found, not listed: each is driven in both builds side by
side through long random input sequences on a virtual clock (random dt, 0 included), with
random call styles, operator actions between cycles and snapshot round trips across
implementations; every variable must match exactly after every call (floats compared by
their bit pattern, so -0.0 vs 0.0 or a different rounding fails). A block needs no entry
here: its inputs are drawn by declared type; ``HINTS`` only narrows ranges so that the
branches of the standard blocks are all reached.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hal import Direction, IecType, Point, PointSpec
from runtime.blocks import COMMANDS
from runtime.blocks._cy import load, python_blocks
from runtime.core._fb import CycleContext

try:
    CY = load()
except ImportError as exc:  # pragma: no cover - only without a compiler
    pytest.skip(f"Cython blocks not built: {exc}", allow_module_level=True)

PY = python_blocks()
NAN = math.nan
IN = Direction.IN
BOOL = ("bool",)


def F(lo: float, hi: float, *, nan: bool = False) -> tuple[Any, ...]:
    return ("float", lo, hi, nan)


def I(lo: int, hi: int) -> tuple[Any, ...]:  # noqa: E743 - an integer input spec
    return ("int", lo, hi)


def C(*values: Any) -> tuple[Any, ...]:
    return ("choice", values)


# Input specs by declared type, for any input without a hint.
BY_TYPE: dict[str, tuple[Any, ...]] = {
    "bool": BOOL,
    "float": F(-100.0, 100.0, nan=True),
    "int": I(-40000, 40000),
    "str": C("", "", "A", "bogus"),
}
TIME = F(0.0, 3.0)
# Block name → input name → value spec, where the type's default would miss branches.
HINTS: dict[str, dict[str, tuple[Any, ...]]] = {
    "TON": {"PT": TIME},
    "TOF": {"PT": TIME},
    "TP": {"PT": TIME},
    "RAMP": {
        "RATE_UP": F(-5.0, 50.0),
        "RATE_DOWN": F(-5.0, 50.0),
        "IN": F(-100.0, 100.0),
        "SET_VAL": F(-100.0, 100.0),
    },
    "HYSTERESIS": {"IN": F(-10.0, 10.0, nan=True), "HIGH": F(-5.0, 5.0), "LOW": F(-5.0, 5.0)},
    "LIMIT": {"MN": F(-5.0, 5.0, nan=True), "IN": F(-10.0, 10.0, nan=True), "MX": F(-5, 5)},
    "SCALE": {
        "IN_MIN": F(-10.0, 10.0),
        "IN_MAX": F(-10.0, 10.0),
        "OUT_MIN": F(-1000.0, 1000.0),
        "OUT_MAX": F(-1000.0, 1000.0),
    },
    "PID": {
        "SP": F(0.0, 100.0, nan=True),
        "PV": F(-50.0, 150.0, nan=True),
        "FORM": C("ISA", "ISA", "PARALLEL", "PARALLEL", "BOGUS"),
        "KC": F(-5.0, 20.0),
        "TI": F(-1.0, 100.0),
        "TD": F(-1.0, 20.0),
        "KP": F(-5.0, 20.0),
        "KI": F(-1.0, 5.0),
        "KD": F(-1.0, 20.0),
        "N": F(-1.0, 20.0),
        "OUT_MIN": F(-50.0, 50.0),
        "OUT_MAX": F(0.0, 150.0),
        "FF": F(-10.0, 10.0),
        "MAN_OUT": F(-20.0, 120.0),
        "TRACK_VAL": F(-20.0, 120.0),
        "SP_RATE": F(-1.0, 20.0),
    },
    "ALARM": {
        "IN": F(-20.0, 120.0, nan=True),
        "HH": F(60.0, 120.0),
        "H": F(40.0, 100.0),
        "L": F(0.0, 60.0),
        "LL": F(-20.0, 40.0),
        "DEADBAND": F(0.0, 10.0),
        "DELAY": F(0.0, 2.0),
        "TEXT": C("", "tank high"),
    },
    "PHASE": {"CMD": C("", "", "", "", *COMMANDS, "start ", "bogus")},
}
# Operator actions between two cycles (action 1 of a step), for the blocks that have them.
BETWEEN: dict[str, Callable[[Any, int], Any]] = {
    "ALARM": lambda blk, i: blk.acknowledge(),
    "PHASE": lambda blk, i: blk.command((*COMMANDS, "bogus")[i % (len(COMMANDS) + 1)]),
}
# Values every float input also takes now and then: exact boundaries, signed zeros, repeats.
FLOAT_SPECIALS = (0.0, -0.0, 1.0, 2.5, -2.5)


def specs(name: str) -> dict[str, tuple[Any, ...]]:
    """Input → value spec of a block: its hint, else by the input's declared type."""
    klass = PY[name]
    notes = klass.__annotations__
    hints = HINTS.get(name, {})
    return {var: hints.get(var, BY_TYPE[notes[var]]) for var in klass.INPUTS}


def test_every_block_is_found_in_both_builds_with_the_same_declarations():
    assert set(CY) == set(PY)
    assert {"TON", "PID", "ALARM", "PHASE"} <= set(PY)  # discovery finds the standard blocks
    for name, klass in CY.items():
        py = PY[name]
        assert dict(klass.INPUTS) == dict(py.INPUTS), name
        assert dict(klass.OUTPUTS) == dict(py.OUTPUTS), name
        assert dict(klass.STATE) == dict(py.STATE), name
        assert list(klass._VARS) == list(py._VARS), name
        assert klass._INPUT_NAMES == py._INPUT_NAMES, name
        assert klass.CLOCK_VARS == py.CLOCK_VARS, name
        assert klass.__annotations__ == py.__annotations__, name
        assert set(HINTS.get(name, {})) <= set(py.INPUTS), name
        assert set(specs(name)) == set(py.INPUTS), name


# --- exact comparison ---------------------------------------------------------------------


def exact(value: Any) -> Any:
    """A form of a snapshot value whose equality is bit equality and type equality."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value.hex() if not math.isnan(value) else "nan")
    if isinstance(value, list):
        return [exact(v) for v in value]
    if isinstance(value, dict):
        return [(k, exact(v)) for k, v in value.items()]  # key order matters too
    return (type(value).__name__, value)


# --- one driven run -----------------------------------------------------------------------


def outcome(fn: Callable[[], Any]) -> tuple[str, str]:
    try:
        fn()
    except Exception as exc:
        return (type(exc).__name__, str(exc))
    return ("", "")


def call(blk: Any, ctx: CycleContext, style: int, inputs: dict[str, Any]) -> None:
    if style == 0:
        blk(ctx, **inputs)
    elif style == 1:
        blk.call(ctx, **inputs)
    else:
        for name, value in inputs.items():
            setattr(blk, name, value)
        blk.execute(ctx)


def sources(name: str, wired: set[str]) -> dict[str, Point]:
    """One input point per wired input, of the IEC type its declared type may be wired to."""
    iec = {"bool": IecType.BOOL, "int": IecType.DINT, "float": IecType.LREAL, "str": IecType.STRING}
    notes = PY[name].__annotations__
    return {
        var: Point(
            PointSpec(name=f"W_{var}", type=iec[notes[var]], direction=IN, driver="t", channel=var)
        )
        for var in sorted(wired)
    }


def drive(
    name: str,
    init: dict[str, Any],
    steps: list[tuple[int, int, int, dict[str, Any]]],
    wired: set[str] | None = None,
):
    """steps: (dt_ns, call style, action, inputs); action 1: the block's operator action
    (``BETWEEN``) before the call, 2: snapshot → JSON → restore into fresh instances, crossed
    between implementations. ``wired`` inputs are wired to points, shared by both builds: a
    step's value for one is written to its point, which the calls read."""
    src = sources(name, wired or set())
    for var, point in src.items():
        point.value = init.pop(var, PY[name].INPUTS[var])
    init = {**init, **src}
    py, cb = PY[name](**init), CY[name](**init)
    assert py.wired() == cb.wired() == {var: point.name for var, point in src.items()}
    assert exact(py.snapshot()) == exact(cb.snapshot())
    ctx_py, ctx_cy = CycleContext("py"), CycleContext("cy")
    now = 1_000_000_000
    for i, (dt_ns, style, action, inputs) in enumerate(steps):
        now += dt_ns
        ctx_py.advance(now)
        ctx_cy.advance(now)
        if action == 1 and name in BETWEEN:
            assert BETWEEN[name](py, i) == BETWEEN[name](cb, i), (name, i)
        elif action == 2:
            text_py = json.dumps(py.snapshot())
            text_cy = json.dumps(cb.snapshot())
            assert text_py == text_cy, (name, i)
            py, cb = PY[name](**src), CY[name](**src)
            py.restore(json.loads(text_cy))
            cb.restore(json.loads(text_py))
        for var in src.keys() & inputs.keys():
            src[var].value = inputs[var]
        inputs = {k: v for k, v in inputs.items() if k not in src}
        got_py = outcome(lambda: call(py, ctx_py, style, inputs))  # noqa: B023
        got_cy = outcome(lambda: call(cb, ctx_cy, style, inputs))  # noqa: B023
        assert got_py == got_cy, (name, i, inputs)
        snap_py, snap_cy = py.snapshot(), cb.snapshot()
        assert exact(snap_py) == exact(snap_cy), (name, i, inputs, snap_py, snap_cy)
        for out in py.OUTPUTS:
            assert exact(getattr(py, out)) == exact(getattr(cb, out)), (name, i, out)
    assert repr(py) == repr(cb)


# --- hypothesis ---------------------------------------------------------------------------


def strategy(spec: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    kind = spec[0]
    if kind == "bool":
        return st.booleans()
    if kind == "int":
        return st.integers(spec[1], spec[2]) | st.sampled_from([0, 1, 2, -1, 32767, -32768])
    if kind == "choice":
        return st.sampled_from(spec[1])
    lo, hi, nan = spec[1:]
    s = st.floats(lo, hi) | st.sampled_from(FLOAT_SPECIALS)
    return s | st.just(NAN) if nan else s


def steps_strategy(name: str) -> st.SearchStrategy[list[Any]]:
    inputs = st.fixed_dictionaries({}, optional={k: strategy(v) for k, v in specs(name).items()})
    dt = st.sampled_from([0, 0, 1_000_000, 10_000_000, 100_000_000]) | st.integers(0, 2_000_000_000)
    action = st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2])
    return st.lists(st.tuples(dt, st.integers(0, 2), action, inputs), min_size=1, max_size=120)


@pytest.mark.parametrize("name", sorted(PY))
def test_parity_random_sequences(name: str) -> None:
    init = st.fixed_dictionaries({}, optional={k: strategy(v) for k, v in specs(name).items()})

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(init=init, steps=steps_strategy(name))
    def check(init: dict[str, Any], steps: list[Any]) -> None:
        drive(name, init, steps)

    check()


@pytest.mark.parametrize("name", sorted(PY))
def test_parity_wired_inputs(name: str) -> None:
    """Inputs wired to points (``PID(PV=point)``) are read the same way by both builds."""
    names = sorted(specs(name))
    init = st.fixed_dictionaries({}, optional={k: strategy(v) for k, v in specs(name).items()})

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(init=init, steps=steps_strategy(name), wired=st.sets(st.sampled_from(names), min_size=1))
    def check(init: dict[str, Any], steps: list[Any], wired: set[str]) -> None:
        drive(name, init, steps, wired)

    check()


# --- a long seeded run per block ----------------------------------------------------------


def draw(rng: random.Random, spec: tuple[Any, ...]) -> Any:
    kind = spec[0]
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.randint(spec[1], spec[2]) if rng.random() < 0.8 else rng.choice([0, 1, -1])
    if kind == "choice":
        return rng.choice(spec[1])
    lo, hi, nan = spec[1:]
    r = rng.random()
    if nan and r < 0.02:
        return NAN
    if r < 0.15:
        return rng.choice(FLOAT_SPECIALS)
    return rng.uniform(lo, hi)


@pytest.mark.parametrize("name", sorted(PY))
def test_parity_long_seeded_run(name: str) -> None:
    rng = random.Random(f"parity:{name}")
    spec = specs(name)
    steps = []
    for _ in range(5000):
        keys = [k for k in spec if rng.random() < 0.3]
        dt = rng.choice([0, 1_000_000, 10_000_000, rng.randrange(0, 1_500_000_000)])
        action = 2 if rng.random() < 0.01 else 1 if rng.random() < 0.05 else 0
        steps.append((dt, rng.randrange(3), action, {k: draw(rng, spec[k]) for k in keys}))
    drive(name, {}, steps)
    drive(name, {}, steps, {k for k in spec if rng.random() < 0.5} or {next(iter(spec))})

"""Typed declarations on a program class: bound to the manifest's cells, refused when wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from runtime import ManifestError, Program, RealIn, ScanEngine, VirtualClock, load_app
from tests.conftest import MakeApp, memory_manifest

UNIT_POINTS = [
    {"name": "R3_X", "type": "LREAL", "direction": "in", "driver": "mem", "channel": "x"},
    {
        "name": "R3_Y",
        "type": "REAL",
        "direction": "out",
        "driver": "mem",
        "channel": "y",
        "safe": -1.0,
    },
]

DECLARED = """
from runtime import BoolGlobal, IntParam, Program, RealIn, RealOut, RealParam

class Main(Program):
    VARS = {"count": 0}
    x = RealIn("X")
    y = RealOut("Y")
    gain = RealParam("gain")
    on = BoolGlobal("on")

    def execute(self, ctx):
        self.count += 1
        self.y.value = self.x.value * self.gain.value if self.on.value else 0.0
"""


def _with_global(**overrides: Any) -> dict[str, Any]:
    return memory_manifest(globals=[{"name": "on", "type": "BOOL", "initial": True}], **overrides)


def _error(make_app: MakeApp, manifest: dict[str, Any], logic: str) -> str:
    with pytest.raises(ManifestError) as info:
        load_app(make_app(manifest, logic))
    return str(info.value)


def test_declarations_bind_the_manifest_cells_and_the_program_runs(make_app: MakeApp) -> None:
    app = load_app(make_app(_with_global(), DECLARED))
    main: Any = app.programs["main"]
    assert main.x is app.image["X"] and main.y is app.image["Y"]
    assert main.gain is app.parameters["gain"] and main.on is app.globals["on"]
    assert app.image["Y"].users == ("main",)  # a declared output names its writer
    engine = ScanEngine(app, clock=VirtualClock())
    engine.start()
    app.drivers["mem"].values["x"] = 1.5  # type: ignore[attr-defined]
    engine.run_until(20_000_000)
    assert app.image["Y"].value == 3.0
    app.globals["on"].value = False  # another program (here the test) clears the global
    engine.run_until(40_000_000)
    assert app.image["Y"].value == 0.0
    engine.close()


def test_the_prefix_goes_in_front_of_every_name_unless_declared_unprefixed(
    make_app: MakeApp,
) -> None:
    logic = """
    from runtime import Program, RealIn, RealOut, RealParam

    class Unit(Program):
        x = RealIn("X")
        y = RealOut("Y")
        gain = RealParam("gain", prefixed=False)  # plant-wide

        def __init__(self, app, *, unit):
            super().__init__(app, prefix=unit + "_")

        def execute(self, ctx):
            self.y.value = self.x.value * self.gain.value
    """
    m = memory_manifest(points=UNIT_POINTS)
    m["programs"][0] |= {"entry": "logic:Unit", "args": {"unit": "R3"}}
    app = load_app(make_app(m, logic))
    unit: Any = app.programs["main"]
    assert unit.x is app.image["R3_X"] and unit.y is app.image["R3_Y"]
    assert unit.gain is app.parameters["gain"]


def test_a_program_without_its_own_init_takes_the_prefix_from_the_manifest(
    make_app: MakeApp,
) -> None:
    logic = """
    from runtime import Program, RealIn

    class Reader(Program):
        x = RealIn("X")

        def execute(self, ctx):
            pass
    """
    m = memory_manifest(points=UNIT_POINTS)
    m["programs"][0] |= {"entry": "logic:Reader", "args": {"prefix": "R3_"}}
    app = load_app(make_app(m, logic))
    assert app.programs["main"].x is app.image["R3_X"]  # type: ignore[attr-defined]


def test_every_missing_name_is_reported_at_once_with_the_program_path(make_app: MakeApp) -> None:
    logic = """
    from runtime import BoolGlobal, Program, RealIn, RealParam

    class Main(Program):
        x = RealIn("NOPE")
        gain = RealParam("gian")
        on = BoolGlobal("of")

        def execute(self, ctx):
            pass
    """
    msg = _error(make_app, _with_global(), logic)
    assert "app.yaml: invalid app manifest: at programs.0 (main): " in msg
    assert "x = RealIn('NOPE'): program 'main' uses point 'NOPE', which the manifest" in msg
    assert "gain = RealParam('gian'): program 'main' uses parameter 'gian'" in msg
    assert "on = BoolGlobal('of'): program 'main' uses global variable 'of'" in msg
    assert "(declared: on)" in msg


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ('x = BoolIn("X")', "x = BoolIn('X'): point 'X' is a LREAL point, BoolIn needs BOOL"),
        (
            'x = RealIn("Y")',
            "x = RealIn('Y'): point 'Y' is an output, RealIn declares an input "
            "(declare it with RealOut)",
        ),
        (
            'x = IntOut("X")',
            "x = IntOut('X'): point 'X' is an input, IntOut declares an output "
            "(declare it with IntIn)",
        ),
        (
            'x = StringParam("gain")',
            "x = StringParam('gain'): parameter 'gain' is of type LREAL, StringParam needs STRING",
        ),
        (
            'x = RealGlobal("on")',
            "x = RealGlobal('on'): global variable 'on' is of type BOOL, RealGlobal needs "
            "REAL or LREAL",
        ),
    ],
)
def test_a_mistyped_declaration_is_refused_naming_both_types(
    make_app: MakeApp, declaration: str, expected: str
) -> None:
    logic = f"""
    from runtime import *

    class Main(Program):
        {declaration}

        def execute(self, ctx):
            pass
    """
    msg = _error(make_app, _with_global(), logic)
    assert "at programs.0 (main): " + expected in msg


def test_forgetting_super_init_is_named_on_first_use(make_app: MakeApp) -> None:
    class Forgetful(Program):
        x = RealIn("X")

        def __init__(self) -> None:  # no super().__init__(app)
            pass

    with pytest.raises(AttributeError, match=r"Forgetful\.x \(RealIn\('X'\)\) is bound by "):
        _ = Forgetful().x.value
    assert isinstance(Forgetful.x, RealIn)  # on the class: the declaration itself


def test_a_subclass_may_replace_a_declaration(make_app: MakeApp) -> None:
    class Base(Program):
        x = RealIn("X")
        y = RealIn("NOPE")

    class Child(Base):
        y = None  # type: ignore[assignment]  # no longer a declaration: not bound

    assert set(Base.DECLARED) == {"x", "y"} and set(Child.DECLARED) == {"x"}


MYPY_PROBE = """
from runtime import BoolGlobal, CycleContext, IntOut, Program, RealIn, RealOut, RealParam

class P(Program):
    tt = RealIn("TT101")
    heat = RealOut("TV101H")
    n = IntOut("N")
    sp = RealParam("temp_sp")
    on = BoolGlobal("on")

    def execute(self, ctx: CycleContext) -> None:
        reveal_type(self.tt.value)
        reveal_type(self.sp.value)
        reveal_type(self.on.value)
        self.heat.value = self.tt.value * self.sp.value
        self.tt.value = 1.0
        self.sp.value = 2.0
        self.n.value = 1.5
        self.on.value = "yes"
"""


def test_mypy_sees_typed_values_and_refuses_wrong_writes(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(MYPY_PROBE))
    out, _, status = mypy_api.run(["--strict", "--no-incremental", str(probe)])
    lines = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(str(probe))]
    assert status == 1
    assert lines == [
        'note: Revealed type is "float"',
        'note: Revealed type is "float"',
        'note: Revealed type is "bool"',
        'error: Property "value" defined in "InputPoint" is read-only  [misc]',
        'error: Property "value" defined in "ParamValue" is read-only  [misc]',
        'error: Incompatible types in assignment (expression has type "float", variable has '
        'type "int")  [assignment]',
        'error: Incompatible types in assignment (expression has type "str", variable has '
        'type "bool")  [assignment]',
    ], out

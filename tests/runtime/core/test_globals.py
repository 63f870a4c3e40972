"""Global variables: declared in app.yaml, validated, shared between programs, found by path."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runtime import ManifestError, ScanEngine, VirtualClock, load_app
from runtime.bench._expr import compile_expr
from runtime.bench._signals import make_resolver
from tests.conftest import MakeApp, memory_manifest

# A writer and a reader in one task, in that order: the reader sees this cycle's value.
SHARING = """
from runtime import BoolGlobal, IntGlobal, Program, RealGlobal, RealIn, RealOut, StringGlobal

class Writer(Program):
    x = RealIn("X")
    level = RealGlobal("level")
    high = BoolGlobal("high")
    trips = IntGlobal("trips")
    mode = StringGlobal("mode")

    def execute(self, ctx):
        self.level.value = self.x.value * 2.0
        if self.level.value > 5.0 and not self.high.value:
            self.trips.value += 1
        self.high.value = self.level.value > 5.0
        self.mode.value = "HIGH" if self.high.value else "NORMAL"

class Reader(Program):
    y = RealOut("Y")
    level = RealGlobal("level")
    high = BoolGlobal("high")

    def execute(self, ctx):
        self.y.value = -1.0 if self.high.value else self.level.value
"""

GLOBALS = [
    {"name": "level", "type": "REAL", "initial": 1, "unit": "m", "description": "tank level"},
    {"name": "high", "type": "BOOL", "retain": True},
    {"name": "trips", "type": "DINT", "initial": 0, "retain": True},
    {"name": "mode", "type": "STRING", "initial": "NORMAL"},
]


def sharing_manifest(**overrides: Any) -> dict[str, Any]:
    return memory_manifest(
        **{
            "programs": [
                {"name": "writer", "entry": "logic:Writer"},
                {"name": "reader", "entry": "logic:Reader"},
            ],
            "tasks": [{"name": "fast", "period_ms": 10, "programs": ["writer", "reader"]}],
            "globals": GLOBALS,
        }
        | overrides
    )


def _error(make_app: MakeApp, manifest: dict[str, Any]) -> str:
    with pytest.raises(ManifestError) as info:
        load_app(make_app(manifest, SHARING))
    return str(info.value)


def test_programs_share_globals_through_the_same_cells(make_app: MakeApp) -> None:
    app = load_app(make_app(sharing_manifest(), SHARING))
    writer: Any = app.programs["writer"]
    reader: Any = app.programs["reader"]
    assert writer.level is reader.level is app.globals["level"]
    assert [g.path for g in app.globals.values()] == [
        "globals.level",
        "globals.high",
        "globals.trips",
        "globals.mode",
    ]
    # initial values typed by their IEC type (REAL 1 → 1.0; BOOL defaults to FALSE)
    assert app.initials["globals.level"] == 1.0 and type(app.initials["globals.level"]) is float
    assert app.initials["globals.high"] is False and app.initials["globals.trips"] == 0
    engine = ScanEngine(app, clock=VirtualClock())
    engine.start()
    driver: Any = app.drivers["mem"]
    driver.values["x"] = 2.0
    engine.run_until(20_000_000)
    assert app.image["Y"].value == 4.0 and app.globals["mode"].value == "NORMAL"
    driver.values["x"] = 3.0
    engine.run_until(40_000_000)
    assert app.image["Y"].value == -1.0
    assert (app.globals["trips"].value, app.globals["mode"].value) == (1, "HIGH")
    engine.close()


def test_bench_expressions_read_globals_by_instance_path(make_app: MakeApp) -> None:
    app = load_app(make_app(sharing_manifest(), SHARING))
    resolve = make_resolver(app, lambda: 0.0)
    check = compile_expr('globals.level > 0.5 and globals.mode == "NORMAL"', resolve).evaluate
    assert check() is True
    app.globals["mode"].value = "HIGH"
    assert check() is False
    with pytest.raises(Exception, match=r"unknown signal 'globals\.nope'.*global variable"):
        compile_expr("globals.nope", resolve)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "a", "type": "BOOL", "retian": True}, "at globals.0.retian: unknown key"),
        ({"name": "a"}, "at globals.0.type: required key is missing"),
        ({"name": "a", "type": "REAL", "initial": math.nan}, "expected a finite number"),
        ({"name": "a", "type": "REAL", "initial": math.inf}, "expected a finite number"),
        ({"name": "a", "type": "INT", "initial": 40000}, "at globals.0: initial:"),
        ({"name": "a", "type": "BOOL", "initial": "yes"}, "at globals.0: initial:"),
        ({"name": "a", "type": "WORD"}, "at globals.0.type:"),
        ({"name": "1a", "type": "BOOL"}, "at globals.0.name:"),
    ],
)
def test_a_bad_global_is_refused_with_its_yaml_path(
    make_app: MakeApp, entry: dict[str, Any], expected: str
) -> None:
    msg = _error(make_app, memory_manifest(globals=[entry]))
    assert "app.yaml: invalid app manifest" in msg and expected in msg


def test_duplicate_globals_and_a_program_named_globals_are_refused(make_app: MakeApp) -> None:
    twice = [{"name": "a", "type": "BOOL"}, {"name": "a", "type": "INT"}]
    assert "at globals.1.name: duplicate name 'a'" in _error(
        make_app, memory_manifest(globals=twice)
    )
    m = memory_manifest()
    m["programs"][0]["name"] = "globals"
    m["tasks"][0]["programs"] = ["globals"]
    assert "at programs.0.name: 'globals' is reserved" in _error(make_app, m)


def test_initial_defaults_to_the_iec_initial_value(make_app: MakeApp) -> None:
    kinds = {"BOOL": False, "INT": 0, "DINT": 0, "REAL": 0.0, "LREAL": 0.0, "STRING": ""}
    m = memory_manifest(globals=[{"name": f"g_{t}", "type": t} for t in kinds])
    app = load_app(make_app(m))
    for iec, value in kinds.items():
        got = app.globals[f"g_{iec}"].value
        assert got == value and type(got) is type(value), iec

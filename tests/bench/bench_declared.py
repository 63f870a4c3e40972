"""App-author API cost (issue 14): declared I/O and globals against fetched cells and reads by name.

Programs with the same execute body over the same memory-driver app (8 points, a parameter,
a flag another program sets): ``by_name`` takes its cells the 1.0.0 way
(``self.x = app.point("X")``) and reads the flag as ``self.app.program("writer").flag``;
``fetched`` takes the cells the same way and the flag as a global
(``self.flag = app.global_var("flag")``); ``declared`` declares them all on the class
(``x = RealIn("X")``, ``flag = BoolGlobal("flag")``). ``declared`` against ``fetched`` is the
cost of declaring (expected: none, the same instance attributes); ``by_name`` against
``fetched`` is what the global saves. Figures: ns per ``execute``, the minimum of timeit
repeats.
"""

from __future__ import annotations

import tempfile
import timeit
from pathlib import Path
from typing import Any

from runtime import load_app
from runtime.core._fb import CycleContext
from tests.conftest import memory_manifest, write_app

_BODY = """
    def execute(self, ctx):
        on = {flag}
        g = self.gain.value
        y = (self.a.value + self.b.value + self.c.value + self.d.value) * g
        self.y1.value = y if on else 0.0
        self.y2.value = -y if on else 0.0
        self.y3.value = y * 0.5
        self.y4.value = y * 0.25
"""

LOGIC = (
    """
from runtime import BoolGlobal, Program, RealIn, RealOut, RealParam

class Writer(Program):
    VARS = {"flag": True}

    def execute(self, ctx):
        pass

class ByName(Program):
    def __init__(self, app):
        super().__init__(app)
        self.a, self.b = app.point("A"), app.point("B")
        self.c, self.d = app.point("C"), app.point("D")
        self.y1, self.y2 = app.point("Y1"), app.point("Y2")
        self.y3, self.y4 = app.point("Y3"), app.point("Y4")
        self.gain = app.param("gain")
"""
    + _BODY.format(flag='self.app.program("writer").flag')
    + """
class Fetched(ByName):
    def __init__(self, app):
        super().__init__(app)
        self.flag = app.global_var("flag")
"""
    + _BODY.format(flag="self.flag.value")
    + """
class Declared(Program):
    a, b, c, d = RealIn("A"), RealIn("B"), RealIn("C"), RealIn("D")
    y1, y2, y3, y4 = RealOut("Y1"), RealOut("Y2"), RealOut("Y3"), RealOut("Y4")
    gain = RealParam("gain")
    flag = BoolGlobal("flag")
"""
    + _BODY.format(flag="self.flag.value")
)


def _manifest() -> dict[str, Any]:
    ins, outs = ["A", "B", "C", "D"], ["Y1", "Y2", "Y3", "Y4"]
    channels = {n.lower(): "in" for n in ins} | {n.lower(): "out" for n in outs}
    points = [
        {"name": n, "type": "REAL", "direction": "in", "driver": "mem", "channel": n.lower()}
        for n in ins
    ] + [
        {
            "name": n,
            "type": "REAL",
            "direction": "out",
            "driver": "mem",
            "channel": n.lower(),
            "safe": 0.0,
        }
        for n in outs
    ]
    return memory_manifest(
        drivers={"mem": {"type": "memory", "options": {"channels": channels}}},
        programs=[
            {"name": "writer", "entry": "logic:Writer"},
            {"name": "by_name", "entry": "logic:ByName"},
            {"name": "fetched", "entry": "logic:Fetched"},
            {"name": "declared", "entry": "logic:Declared"},
        ],
        tasks=[
            {
                "name": "fast",
                "period_ms": 10,
                "programs": ["writer", "by_name", "fetched", "declared"],
            }
        ],
        points=points,
        globals=[{"name": "flag", "type": "BOOL", "initial": True}],
    )


def measure(*, number: int = 200_000, repeat: int = 7) -> dict[str, Any]:
    app = load_app(write_app(Path(tempfile.mkdtemp(prefix="vplc-bench-decl-")), _manifest(), LOGIC))
    ctx = CycleContext("bench")
    ctx.advance(0)
    ctx.advance(10_000_000)
    out: dict[str, Any] = {}
    for name in ("by_name", "fetched", "declared"):
        env = {"p": app.programs[name], "ctx": ctx}
        best = min(timeit.repeat("p.execute(ctx)", globals=env, number=number, repeat=repeat))
        out[f"{name}_execute_ns"] = round(best / number * 1e9, 1)
    out["declaring_costs_ns"] = round(out["declared_execute_ns"] - out["fetched_execute_ns"], 1)
    out["global_saves_ns"] = round(out["by_name_execute_ns"] - out["fetched_execute_ns"], 1)
    return out


def run() -> dict[str, Any]:
    return measure()

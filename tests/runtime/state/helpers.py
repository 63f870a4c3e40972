"""Apps and traces for state tests: a program with VARS, nested/listed blocks and a PID."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hal import MemoryDriver
from runtime import ScanEngine, VirtualClock, load_app
from tests.conftest import MakeApp, memory_manifest

STATE_LOGIC = """
from runtime import FunctionBlock, Program
from runtime.blocks import PID

class Acc(FunctionBlock):
    INPUTS = {"IN": 0.0}
    OUTPUTS = {"Q": 0.0}
    STATE = {"n": 0}

    def execute(self, ctx):
        self.n += 1
        self.Q += self.IN * ctx.dt

class Main(Program):
    VARS = {"count": 0, "total": 0.0, "label": "batch"}

    def __init__(self, app):
        super().__init__(app)
        self.x = app.point("X")
        self.y = app.point("Y")
        self.gain = app.param("gain")
        self.acc = Acc()
        self.stages = [Acc(), Acc()]
        self.pid = PID(KC=0.8, TI=2.0, TD=0.1, OUT_MIN=-50.0, OUT_MAX=50.0)

    def execute(self, ctx):
        self.count += 1
        self.total += self.x.value
        self.acc(ctx, IN=self.x.value)
        self.stages[0](ctx, IN=self.acc.Q)
        self.stages[1](ctx, IN=self.stages[0].Q)
        self.pid(ctx, SP=self.gain.value, PV=self.x.value)
        self.y.value = self.pid.OUT
"""

# The unchanged set of leaf paths of Main above (used to check counts of a pure version bump).
MAIN_LEAVES_PREFIXES = ("main.count", "main.total", "main.label", "main.acc.", "main.stages[")


def manifest(version: str = "1.0.0", **overrides: Any) -> dict[str, Any]:
    return memory_manifest(version=version, **overrides)


class Rig:
    """An engine on a virtual clock with a first-order plant in the memory driver and a trace.

    The plant (x follows y with a lag) lives in ``driver.values``, so a driver snapshot
    carries it; the trace holds one tuple of exact values per cycle.
    """

    def __init__(self, app_dir: Path, *, start_ns: int = 0) -> None:
        self.app = load_app(app_dir)
        self.engine = ScanEngine(self.app, clock=VirtualClock(start_ns))
        driver = self.app.drivers["mem"]
        assert isinstance(driver, MemoryDriver)
        self.driver = driver
        self.trace: list[tuple[Any, ...]] = []
        self.engine.add_cycle_hook(self._hook)
        self.engine.start()

    def _hook(self, task: Any, now_ns: int) -> None:
        values = self.driver.values
        values["x"] += 0.05 * (values["y"] - values["x"]) + 0.01
        ctx = task.ctx
        self.trace.append((now_ns, ctx.cycle, ctx.dt, values["y"], values["x"], self.version))

    @property
    def version(self) -> str:
        return self.engine.app.version

    def run_ms(self, end_ms: int) -> None:
        self.engine.run_until(end_ms * 1_000_000)

    def program(self, name: str = "main") -> Any:
        return self.engine.app.programs[name]

    def after(self, ms: int) -> list[tuple[Any, ...]]:
        """Trace rows from app time ``ms`` on, without the version column."""
        return [row[:5] for row in self.trace if row[0] >= ms * 1_000_000]


def state_app(
    make_app: MakeApp, version: str = "1.0.0", logic: str = STATE_LOGIC, **kw: Any
) -> Path:
    return make_app(manifest(version, **kw), logic)

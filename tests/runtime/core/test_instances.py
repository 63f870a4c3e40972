"""The app's InstanceTree: one walk, one matching rule; a new version's tree after a change."""

from __future__ import annotations

import io

from rich.console import Console

from runtime import ScanEngine, VirtualClock, load_app
from runtime.blocks import ALARM, PID
from runtime.host._view import LiveView
from runtime.ops import find_block
from runtime.state import change_online
from tests.conftest import MakeApp
from tests.runtime.state.helpers import STATE_LOGIC, Rig, state_app

WITH_ALARM = (
    STATE_LOGIC.replace(
        "from runtime.blocks import PID\n", "from runtime.blocks import ALARM, PID\n"
    )
    .replace(
        "        self.pid = PID(",
        '        self.high = ALARM(TEXT="X high", H_EN=True, H=0.5)\n        self.pid = PID(',
    )
    .replace(
        "        self.y.value = self.pid.OUT\n",
        "        self.y.value = self.pid.OUT\n        self.high(ctx, IN=self.x.value)\n",
    )
)


def test_paths_blocks_leaves_and_lookups(make_app: MakeApp) -> None:
    app = load_app(state_app(make_app))
    tree = app.tree
    blocks = tree.blocks()
    assert list(blocks) == ["main.acc", "main.stages[0]", "main.stages[1]", "main.pid"]
    assert tree.find("main.stages[1]") is app.programs["main"].stages[1]  # type: ignore[attr-defined]
    assert tree.find("main") is app.programs["main"]
    assert tree.find("main.count") is None and tree.find("nope.acc") is None
    assert [p for p, _ in tree.of_type(PID)] == ["main.pid"]
    assert tree.program_of("main.stages[0]") is app.programs["main"]
    leaves = tree.leaves()
    assert list(leaves)[:4] == ["main.count", "main.total", "main.label", "main.acc.IN"]
    owner, attr = leaves["main.pid.I"]
    assert owner is blocks["main.pid"] and attr == "I"
    # Every block variable is a leaf: none is skipped, none invented.
    acc = blocks["main.acc"]
    assert {p for p in leaves if p.startswith("main.acc.")} == {
        f"main.acc.{v}" for v in type(acc)._VARS
    }


def test_online_added_blocks_are_in_the_new_tree_commands_and_view(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    view = LiveView(rig.engine)
    assert view.alarms == []
    report = change_online(rig.engine, state_app(make_app, "1.1.0", WITH_ALARM))
    rig.run_ms(200)
    assert report.status == "committed", report.reason
    tree = rig.engine.app.tree
    [(path, alarm)] = tree.of_type(ALARM)
    assert path == "main.high" and find_block(rig.engine, "main.high") is alarm
    assert "main.high.ACTIVE" in tree.leaves()
    rig.driver.values["x"] = 1.0  # above H_LIM: the new block alarms
    rig.run_ms(300)
    assert alarm.ACTIVE
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(view.render())  # the view follows the running app's tree
    assert "X high" in console.export_text() and view.alarms == [("main.high", alarm)]


def test_the_tree_sees_the_running_app_not_a_copy(make_app: MakeApp) -> None:
    app = load_app(make_app(logic=WITH_ALARM.replace("H=0.5", "H=1e9")))
    engine = ScanEngine(app, clock=VirtualClock())
    program = app.programs["main"]
    replacement = ALARM(TEXT="replaced")
    program.high = replacement  # type: ignore[attr-defined]
    assert app.tree.find("main.high") is replacement
    engine.close()

"""The Programs part of the address space, scan side: the catalogue of the instance tree and
its values read between cycles, by path, the same before and after an online change."""

from __future__ import annotations

from typing import Any

from runtime.opcua._programs import ProgramReader, ProgramValues, catalogue, leaf_kind, plain
from runtime.state import change_online
from tests.conftest import MakeApp
from tests.runtime.state.helpers import STATE_LOGIC, Rig, state_app


def _poll(rig: Rig, reader: ProgramReader) -> list[Any]:
    reader.poll()  # asks the scan
    rig.run_ms(int(rig.engine.now_ns / 1e6) + 20)  # a cycle runs it between two cycles
    values = reader.poll()
    assert values is not None
    return values


def test_catalogue_groups_inputs_outputs_state_and_program_vars(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    programs, blocks, leaves = catalogue(rig.engine)
    assert programs == ["main"]
    by_path = {leaf.path: leaf for leaf in leaves}
    assert by_path["main.count"].group == "Var" and by_path["main.count"].kind == "i"
    assert by_path["main.label"].kind == "s"
    assert (by_path["main.acc.IN"].group, by_path["main.acc.Q"].group) == ("Input", "Output")
    assert by_path["main.acc.n"].group == "State" and by_path["main.acc.n"].owner == "main.acc"
    assert by_path["main.stages[1].Q"].owner == "main.stages[1]"
    assert by_path["main.pid.OUT"].kind == "f"
    paths = [b.path for b in blocks]
    assert paths[:3] == ["main.acc", "main.stages[0]", "main.stages[1]"]
    assert {b.type_name for b in blocks} == {"Acc", "PID"}


def test_values_are_read_between_cycles_and_follow_an_online_change(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    states: list[tuple[Any, ...]] = []  # (count, total, acc.n) after every cycle
    rig.engine.add_cycle_hook(
        lambda task, now: states.append((rig.program().count, rig.program().total,
                                         rig.program().acc.n))
    )  # fmt: skip
    rig.run_ms(100)
    _, _, leaves = catalogue(rig.engine)
    paths = [leaf.path for leaf in leaves]
    reader = ProgramReader(rig.engine, paths)
    assert reader.poll() is None  # nothing read yet: the request waits for the scan
    first = dict(zip(paths, _poll(rig, reader), strict=True))
    # the state after one whole cycle, not a mix of two
    assert (first["main.count"], first["main.total"], first["main.acc.n"]) in states

    # v1.0.1 renames `label` to `title`: the same paths read the new instances, the gone
    # one reads None (shown Bad), the new one waits for the server's next start.
    logic = STATE_LOGIC.replace('"label": "batch"', '"title": "batch"')
    report = change_online(rig.engine, state_app(make_app, "1.0.1", logic))
    rig.run_ms(400)
    assert report.status == "committed", report.reason
    after = dict(zip(paths, _poll(rig, reader), strict=True))
    # the new version's instance (the old one stopped counting at the change, near 12)
    assert rig.program().count - 1 <= after["main.count"] <= rig.program().count
    assert after["main.label"] is None
    assert "main.title" not in after


def test_plain_values_and_kinds() -> None:
    assert [leaf_kind(v) for v in (True, 3, 2.5, "x", None, [1])] == ["b", "i", "f", "s", "s", "s"]
    assert plain([1, 2]) == "[1, 2]" and plain(None) is None and plain(1.5) == 1.5


def test_program_values_take_their_texts_and_pass_on_the_others() -> None:
    values = ProgramValues()
    other: list[tuple[str, int, Any]] = []
    values.fallback = lambda *a: other.append(a)
    values.on_text("programs", 0, [1, 2])
    values.on_text("alarm", 3, "TT101 high")
    assert values.values == [1, 2] and values.seq == 1
    assert other == [("alarm", 3, "TT101 high")]

"""Read-after-write through a front-end's pipe: a text sampled before a command never undoes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

import pytest

from runtime.front import ChildLink, FrontEnd, frame_hub
from runtime.ops._commands import CommandResponse, SetParameterCommand
from tests.conftest import MakeApp
from tests.runtime.core.test_instances import WITH_ALARM
from tests.runtime.state.helpers import Rig, state_app

PARAMS = [
    {"name": "gain", "type": "LREAL", "default": 2.0, "min": 0, "max": 10},
    {"name": "limit", "type": "DINT", "default": 5, "min": 0, "max": 1000},
]


class _Config:
    sample_ms = 0.0  # a sample at every cycle
    stats_s = 3600.0
    command_timeout_s = 5.0


class _Front(FrontEnd):
    """The scan-process side without a spawned child: the test plays the child's part."""

    child_kind = "probe"


def _set(name: str, value: Any) -> SetParameterCommand:
    return SetParameterCommand(
        cmd="set_parameter", id=f"t-{time.monotonic_ns()}", ts=datetime.now(UTC),
        user="olga", name=name, value=value,
    )  # fmt: skip


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


@pytest.fixture
def rig(make_app: MakeApp) -> Rig:
    return Rig(state_app(make_app, logic=WITH_ALARM, parameters=PARAMS))


@pytest.fixture
def front(rig: Rig) -> Iterator[tuple[_Front, Connection, ChildLink]]:
    fe = _Front(rig.engine, _Config())
    fe.feed = frame_hub(rig.engine).subscribe(0)
    parent, child = Pipe()
    fe._conn = parent
    link = ChildLink(child, timeout_s=5.0, param_values=[2.0, 5])  # the values at spawn
    link.start("probe-pipe")
    yield fe, parent, link
    link.done.set()
    parent.close()
    fe.feed.close()


def test_a_text_sampled_before_a_write_does_not_bring_the_old_value_back(
    rig: Rig, front: tuple[_Front, Connection, ChildLink]
) -> None:
    """The interleaving of the clean-clone CI run that read 2.0 for 3.5 over Modbus: the
    scan sampled gain = 2.0 (its text queued for the link thread), then the child's write of
    3.5 came in; the link thread answers a command before it drains the texts, so the old
    text reached the child after the answer and overwrote its copy until the next sample."""
    fe, parent, link = front
    engine = rig.engine
    engine.app.parameters["limit"].value = 7  # another slot's change, sampled with gain's
    rig.run_ms(20)  # samples: texts of gain = 2.0 and limit = 7 wait in the queue
    queued = [text[:3] for text in fe.feed.side.queue] if fe.feed else []
    assert ("param", 0, 2.0) in queued and ("param", 1, 7) in queued

    writer, answer = _in_thread(lambda: link.remote_apply(_set("gain", 3.5)))
    handler, _ = _in_thread(lambda: fe._handle(parent.recv()))  # the command, its answer
    while handler.is_alive():  # the scan between two cycles: the command runs, no sample
        engine.run_until(0)
        time.sleep(0.001)
    writer.join(5)
    resp: CommandResponse = answer[0]
    assert resp.status == "accepted" and engine.app.parameters["gain"].value == 3.5
    at_return = link.param_values[0]
    link.param_values[0] = resp.new  # a child showing its own write (as Modbus did)

    fe._exchange(parent, 0.0)  # the link thread's next turn: the queued texts, statistics
    parent.send(("stop",))
    assert link.done.wait(5)  # the pipe is read in order: everything before stop is in
    assert link.stats_seq == 1
    assert link.param_values[0] == 3.5, "a text sampled before the write undid it"
    assert link.param_values[1] == 7, "a text of another parameter was dropped with it"
    assert link.stale_texts == 1
    assert at_return == 3.5  # in the link's copy before the write returned, by the answer


def test_texts_sampled_after_a_command_carry_its_sequence(rig: Rig) -> None:
    feed = frame_hub(rig.engine).subscribe(0)
    try:
        rig.run_ms(20)
        before = rig.engine.change_seq
        assert all(t[3] == before for t in feed.side.queue)
        feed.side.queue.clear()
        rig.engine.submit(lambda e: setattr(e.app.parameters["gain"], "value", 4.5))
        rig.run_ms(40)
        assert rig.engine.change_seq == before + 1
        assert list(feed.side.queue) == [("param", 0, 4.5, before + 1)]
    finally:
        feed.close()


def _answer_from_the_parent(
    link: ChildLink, parent: Connection, before: list[tuple[Any, ...]], after: list[Any]
) -> CommandResponse:
    """The child writes gain = 3.5; the parent sends ``before``, then the answer (ran at
    change 5, gain = 3.5), then ``after``, then stop."""
    writer, answer = _in_thread(lambda: link.remote_apply(_set("gain", 3.5)))
    kind, req, body = parent.recv()
    assert kind == "cmd" and body["name"] == "gain"
    for msg in before:
        parent.send(msg)
    resp = CommandResponse(id=body["id"], cmd="set_parameter", status="accepted", old=2.0, new=3.5)
    parent.send(("resp", req, resp.model_dump(mode="json"), 5, [("param", 0, 3.5)]))
    for msg in after:
        parent.send(msg)
    parent.send(("stop",))
    writer.join(5)
    link.done.wait(5)
    result: CommandResponse = answer[0]
    return result


def test_a_newer_text_wins_over_an_answer_that_comes_after_it() -> None:
    """Another front-end set gain = 4.0 after this one's write ran; its text (change 6) was
    sent before this write's answer (change 5): the child keeps 4.0, the scan's value."""
    parent, child = Pipe()
    link = ChildLink(child, timeout_s=5.0, param_values=[2.0])
    link.start("probe-pipe")
    resp = _answer_from_the_parent(
        link, parent, before=[("text", "param", 0, 4.0, 6)], after=[("text", "param", 0, 2.0, 4)]
    )
    assert resp.status == "accepted"
    assert link.param_values == [4.0] and link.stale_texts == 1


def test_an_answer_and_texts_of_its_own_change_or_later_are_kept_in_order() -> None:
    seen: list[tuple[str, int, Any]] = []
    parent, child = Pipe()
    link = ChildLink(
        child, timeout_s=5.0, param_values=[2.0],
        on_text=lambda what, idx, value: seen.append((what, idx, value)),
    )  # fmt: skip
    link.start("probe-pipe")
    _answer_from_the_parent(
        link, parent,
        before=[("text", "param", 0, 2.0, 3), ("text", "point", 3, "idle", 3)],
        after=[("text", "param", 0, 3.5, 5), ("text", "point", 3, "busy", 4),
               ("text", "param", 0, 4.0, 7)],
    )  # fmt: skip
    # the answer after the older text; a point's text is its own slot (no answer touched it)
    assert seen == [
        ("param", 0, 2.0), ("point", 3, "idle"), ("param", 0, 3.5), ("param", 0, 3.5),
        ("point", 3, "busy"), ("param", 0, 4.0),
    ]  # fmt: skip

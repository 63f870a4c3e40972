"""One shared frame per engine, whatever the number of front-ends reading it."""

from __future__ import annotations

from multiprocessing.shared_memory import SharedMemory
from typing import Any

import pytest

from runtime.front import Feed, SharedFrame, frame_hub
from runtime.front._writer import _SIDE_CAPACITY
from tests.conftest import MakeApp
from tests.runtime.core.test_instances import WITH_ALARM
from tests.runtime.state.helpers import Rig, state_app


def texts_of(feed: Feed) -> list[tuple[str, int, Any]]:
    """The texts queued for ``feed``'s link thread, without their change_seq stamps."""
    return [text[:3] for text in feed.side.queue]


def test_two_front_ends_share_one_frame_and_one_writer(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app, logic=WITH_ALARM))
    hub = frame_hub(rig.engine)
    slow = hub.subscribe(100_000_000)
    fast = hub.subscribe(10_000_000)
    try:
        assert slow.shm_name == fast.shm_name
        assert frame_hub(rig.engine) is hub
        writer = hub.writer
        assert writer is not None and writer.sample_ns == 10_000_000  # the fastest reader's
        rig.run_ms(200)
        assert writer.samples == pytest.approx(20, abs=2)  # one write per 10 ms, not two
        rig.engine.app.parameters["gain"].value = 7.5
        rig.run_ms(250)
        for feed in (slow, fast):  # every reader gets every text in its own queue
            assert ("param", 0, 7.5) in texts_of(feed)
        reader = SharedFrame(fast.n_points, fast.n_alarms, name=fast.shm_name)
        try:
            frame = reader.read()
            assert frame is not None and frame.now_ns > 0
        finally:
            reader.close()
    finally:
        fast.close()
    # The slower reader alone now: its own period, the same frame still there.
    assert hub.writer is writer and writer.sample_ns == 100_000_000
    SharedMemory(name=slow.shm_name).close()
    slow.close()
    assert hub.writer is None
    with pytest.raises(FileNotFoundError):  # the last reader gone: the block is unlinked
        SharedMemory(name=slow.shm_name)
    assert frame_hub(rig.engine) is not hub  # a later front-end gets a fresh hub


def test_a_reader_that_stops_draining_is_told_to_ask_again(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app, logic=WITH_ALARM))
    stuck, live = (frame_hub(rig.engine).subscribe(0) for _ in range(2))
    try:
        stuck.side.queue.extend([("point", 0, "x", 0)] * _SIDE_CAPACITY)
        rig.engine.app.parameters["gain"].value = 3.25
        rig.run_ms(30)
        assert stuck.side.overflowed and stuck.side.dropped >= 1
        assert ("param", 0, 3.25) in texts_of(live)  # the other reader is not held up
        stuck.resend_texts()  # what its link thread does once it sees the overflow
        live.side.queue.clear()
        rig.run_ms(60)
        assert ("param", 0, 3.25) in texts_of(stuck)
        assert not stuck.side.overflowed
    finally:
        stuck.close()
        live.close()


def test_the_frame_holds_the_image_before_the_first_cycle(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app, logic=WITH_ALARM))
    rig.engine.app.parameters["gain"].value = 1.25
    feed = frame_hub(rig.engine).subscribe(10_000_000)  # the scan has not cycled since
    try:
        reader = SharedFrame(feed.n_points, feed.n_alarms, name=feed.shm_name)
        try:
            frame = reader.read()
            assert frame is not None and frame.seq > 0  # written, and complete
            assert ("param", 0, 1.25) in texts_of(feed)
        finally:
            reader.close()
    finally:
        feed.close()

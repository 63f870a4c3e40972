"""When the web process samples the shared frame: a new frame at once, otherwise every period."""

from __future__ import annotations

import itertools

from runtime.front import SharedFrame
from runtime.web._child import Pacer


def test_a_new_frame_is_sampled_at_once_not_at_the_next_period() -> None:
    pacer = Pacer(0.1)
    assert pacer.due(0.0, new_frame=False)  # the first look always samples
    assert not pacer.due(0.03, new_frame=False)  # nothing new, the period not over
    assert pacer.due(0.04, new_frame=True)  # written 40 ms in: sampled now, not at 100 ms
    assert not pacer.due(0.05, new_frame=False)


def _sampled(pacer: Pacer, *, new_frame: bool, step_ms: int = 10) -> list[int]:
    """The milliseconds of one second, looked at every ``step_ms``, at which it samples."""
    return [t for t in range(0, 1000, step_ms) if pacer.due(t / 1000, new_frame=new_frame)]


def test_frames_faster_than_the_period_are_sampled_about_once_a_period() -> None:
    # Another reader made the scan write every 10 ms: not 100 messages a second.
    sampled = _sampled(Pacer(0.1), new_frame=True)
    gaps = [b - a for a, b in itertools.pairwise(sampled)]
    assert 10 <= len(sampled) <= 13
    assert min(gaps) >= 75  # never closer than 0.75 period


def test_without_new_frames_the_side_channel_is_still_looked_at_every_period() -> None:
    sampled = _sampled(Pacer(0.1), new_frame=False)
    gaps = [b - a for a, b in itertools.pairwise(sampled)]
    assert sampled[0] == 0 and 9 <= len(sampled) <= 10
    assert all(100 <= g <= 110 for g in gaps)


def test_the_frame_counter_moves_with_every_write() -> None:
    frame = SharedFrame(3, 0)
    try:
        before = frame.peek_seq()
        frame.begin(1, 0)
        assert frame.peek_seq() == before + 1  # odd: a reader sees a frame is being written
        frame.end()
        assert frame.peek_seq() == before + 2
        got = frame.read()
        assert got is not None and got.seq == frame.peek_seq()
    finally:
        frame.close()

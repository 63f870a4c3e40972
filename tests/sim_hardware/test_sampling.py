"""The sim driver's inline latch and write (``_sampling``) do what ``Point.latch`` and
``Point.output_raw`` do, for every kind of point, forced or not, in range or not."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest

from hal import Point, PointSpec, Quality
from sim_hardware._sampling import Analog, Binary, Output, measure_clean, plain, write_commands
from sim_hardware.driver import _converter

LO, HI = 0.0, 100.0  # the channel's instrument range
READINGS = [-5.0, 0.0, 0.5, 42.25, 99.0, 100.0, 130.0, math.inf, -math.inf, math.nan]


def _specs() -> list[dict[str, Any]]:
    """Input points a sim channel can carry: plain ones and those that need Point.latch."""
    return [
        {"type": "LREAL"},
        {"type": "REAL", "range": [0.0, 100.0]},
        {"type": "REAL", "range": [10.0, 50.0]},  # narrower than the channel: UNCERTAIN
        {"type": "LREAL", "range": [-1e9, 1e9]},
        {"type": "REAL", "scaling": {"raw": [0, 100], "eng": [0, 27648]}},
        {"type": "INT"},
        {"type": "DINT", "range": [0, 40]},
    ]


def _pair(spec: dict[str, Any], name: str) -> tuple[Point, Point]:
    full = PointSpec(name=name, direction="in", driver="sim", channel="ch", **spec)
    return Point(full), Point(full)


def _state(p: Point) -> tuple[Any, ...]:
    v = p.value
    return (type(v), repr(v), p.quality, p.timestamp_ns)


@pytest.mark.parametrize("forced", [False, True])
def test_analog_inline_latch_is_point_latch(forced: bool) -> None:
    pairs = [_pair(s, f"P{i}") for i, s in enumerate(_specs())]
    mine = [a for a, _ in pairs]
    ref = [b for _, b in pairs]
    for p in mine + ref:
        if forced:
            p.forced, p.forced_value = True, p.value if p.type.value != "REAL" else 7.5
    ch = Analog(std=0.0, lo=LO, hi=HI, points=[(p, _converter(p)) for p in mine])
    assert len(ch.cells) == 4 and len(ch.points) == 3  # both paths are exercised
    rng = random.Random(1)
    for k, x in enumerate(READINGS, start=1):
        now = k * 1_000_000
        bad = measure_clean([ch], [x], [], [], rng, now)
        assert bad == (0 if not math.isfinite(x) else -1)
        # what the driver handed Point.latch before the inline path: clamped, same quality
        quality = Quality.GOOD if LO <= x <= HI else Quality.UNCERTAIN
        value = x if LO <= x <= HI else LO if x < LO or x != x else HI
        for p in ref:
            conv = _converter(p)
            p.latch(value if conv is None else conv(value), quality, now)
        assert [_state(p) for p in mine] == [_state(p) for p in ref], x


def test_bool_inline_latch_is_point_latch() -> None:
    raws = itertools.cycle([True, False, 1, 0, 0.0, 2.5, -1, 0.25])
    spec = PointSpec(name="B", type="BOOL", direction="in", driver="sim", channel="b")
    as_int = PointSpec(name="I", type="INT", direction="in", driver="sim", channel="b")
    mine = [Point(spec), Point(spec), Point(as_int)]
    ref = [Point(spec), Point(spec), Point(as_int)]
    mine[1].forced = ref[1].forced = True
    mine[1].forced_value = ref[1].forced_value = True
    b = Binary([(p, _converter(p)) for p in mine])
    assert len(b.cells) == 2 and len(b.points) == 1
    for k in range(16):
        raw = next(raws)
        measure_clean([], [], [b], [raw], random.Random(0), k)
        for p in ref:
            conv = _converter(p)
            p.latch(raw if conv is None else conv(raw), Quality.GOOD, k)
        assert [_state(p) for p in mine] == [_state(p) for p in ref], raw


def test_only_unscaled_float_and_bool_points_are_plain() -> None:
    kinds = {
        "LREAL": True,
        "REAL": True,
        "BOOL": True,
        "INT": False,
        "DINT": False,
    }
    for iec, expected in kinds.items():
        p = Point(PointSpec(name="P", type=iec, direction="in", driver="s", channel="c"))
        assert plain(p, _converter(p)) is expected, iec
    scaled = Point(
        PointSpec(
            name="S",
            type="REAL",
            direction="in",
            driver="s",
            channel="c",
            scaling={"raw": [4, 20], "eng": [0, 100]},
        )
    )
    assert plain(scaled, _converter(scaled)) is False


@pytest.mark.parametrize("forced", [False, True])
def test_write_commands_sends_what_output_raw_gives(forced: bool) -> None:
    specs = [
        {"type": "REAL", "safe": 0.0},
        {"type": "BOOL", "safe": False},
        {"type": "INT", "safe": 0},
        {"type": "REAL", "safe": 4.0, "scaling": {"raw": [4, 20], "eng": [0, 100]}},
    ]
    points = [
        Point(PointSpec(name=f"O{i}", direction="out", driver="s", channel="c", **s))
        for i, s in enumerate(specs)
    ]
    for p, v in zip(points, [12.5, True, 3, 50.0], strict=True):
        p.value = v
        if forced:
            p.forced, p.forced_value = True, v
    points.append(points[0])  # then a point holding None (never written): 0
    sent: list[float] = []
    write_commands([Output(p, sent.append) for p in points[:-1]])
    expected = [float(p.output_raw()) for p in points[:-1]]
    points[0].value = None
    points[0].forced = False
    write_commands([Output(points[0], sent.append)])
    expected.append(0.0)
    assert sent == expected and all(type(s) is float for s in sent)

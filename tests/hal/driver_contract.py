"""The contract every HAL driver passes (simulator, memory, MQTT, Modbus...): one reusable check.

Use from a driver's tests::

    from tests.hal.driver_contract import check_driver_contract

    def test_contract():
        check_driver_contract(lambda: MyDriver(name="d", options={...}), bindings=[spec, ...])

``make_driver`` must return a fresh, unopened driver on every call. ``bindings`` are the
:class:`hal.PointSpec` of a valid configuration (each names its ``channel``); include at least
one input and one output if the driver has both, so every clause is exercised.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from pydantic import BaseModel

from hal import ChannelInfo, Direction, Driver, DriverError, IecType, Point, PointSpec, Quality

__all__ = ["check_driver_contract"]

# A per-cycle call must return quickly: the scan thread cannot wait for a network or a disk.
MAX_CALL_S = 0.05
_BOTH = frozenset({Direction.IN, Direction.OUT})


def check_driver_contract(
    make_driver: Callable[[], Driver],
    bindings: Sequence[PointSpec],
    *,
    cycles: int = 50,
    period_ns: int = 10_000_000,
    fresh_timestamps: bool = True,
) -> None:
    """Raise AssertionError naming the broken clause if the driver violates the contract.

    ``fresh_timestamps``: every input latched by ``read_inputs(now)`` carries ``now``
    (drivers that forward a source timestamp pass False: then it must be ≤ now).
    """
    assert bindings, "give the contract at least one binding"
    driver = make_driver()
    assert isinstance(driver, Driver), "driver does not implement the hal.Driver protocol"
    assert isinstance(driver.name, str) and driver.name, "driver.name must be a non-empty str"
    _check_options_model(type(driver))
    channels = _check_channels(driver)
    _check_bindings_fit(channels, bindings)
    _check_bind_rejects(make_driver, channels, bindings)
    _check_cycle(driver, bindings, cycles, period_ns, fresh_timestamps)
    _check_snapshot(make_driver, driver, bindings)


def _check_options_model(cls: type) -> None:
    # The loader validates a manifest's options against it, so errors carry their YAML path.
    model = getattr(cls, "Options", None)
    assert isinstance(model, type) and issubclass(model, BaseModel), "no `Options` model declared"
    assert model.model_config.get("extra") == "forbid", "Options must refuse unknown keys"
    assert model.model_config.get("allow_inf_nan") is False, "Options must refuse NaN/inf"


def _check_channels(driver: Driver) -> dict[str, ChannelInfo]:
    first = dict(driver.channels())
    assert first, "channels() is empty"
    assert first == dict(driver.channels()), "channels() changes between calls"
    for key, info in first.items():
        assert isinstance(info, ChannelInfo), f"channel {key!r}: not a hal.ChannelInfo"
        assert info.name == key, f"channel key {key!r} != ChannelInfo.name {info.name!r}"
        assert info.directions and info.directions <= _BOTH, f"channel {key!r}: directions"
        assert isinstance(info.type, IecType), f"channel {key!r}: type is not an IecType"
        if info.range is not None:
            lo, hi = info.range
            assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi, f"channel {key!r}: range"
    return first


def _check_bindings_fit(channels: dict[str, ChannelInfo], bindings: Sequence[PointSpec]) -> None:
    for spec in bindings:
        info = channels.get(spec.channel)
        assert info is not None, f"binding {spec.name!r}: channel {spec.channel!r} not offered"
        assert spec.direction in info.directions, f"binding {spec.name!r}: wrong direction"


def _point(name: str, direction: Direction, channel: str) -> Point:
    safe = 0.0 if direction is Direction.OUT else None
    spec = PointSpec(
        name=name, type=IecType.LREAL, direction=direction, driver="x", channel=channel, safe=safe
    )
    return Point(spec)


def _expect_rejected(make_driver: Callable[[], Driver], point: Point, channel: str) -> None:
    driver = make_driver()
    try:
        driver.bind([(point, channel)])
    except DriverError as exc:
        text = str(exc)
        assert point.name in text, f"bind error does not name the point: {text}"
        assert channel in text, f"bind error does not name the channel: {text}"
        return
    raise AssertionError(f"bind accepted point {point.name!r} on channel {channel!r}")


def _check_bind_rejects(
    make_driver: Callable[[], Driver],
    channels: dict[str, ChannelInfo],
    bindings: Sequence[PointSpec],
) -> None:
    missing = "no_such_channel_zz9"
    assert missing not in channels
    _expect_rejected(make_driver, _point("contract_probe_in", Direction.IN, missing), missing)
    for direction, other in ((Direction.IN, Direction.OUT), (Direction.OUT, Direction.IN)):
        only = [k for k, i in channels.items() if i.directions == frozenset({direction})]
        if only:
            probe = _point(f"contract_probe_{other.value}", other, only[0])
            _expect_rejected(make_driver, probe, only[0])
    # a rejected bind must not poison a later valid one
    driver = make_driver()
    driver.bind([(Point(spec), spec.channel) for spec in bindings])


def _timed(what: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    result = fn()
    took = time.perf_counter() - t0
    assert took < MAX_CALL_S, f"{what} blocked for {took * 1e3:.1f} ms"
    return result


def _check_cycle(
    driver: Driver,
    bindings: Sequence[PointSpec],
    cycles: int,
    period_ns: int,
    fresh: bool,
) -> None:
    points = [Point(spec, i) for i, spec in enumerate(bindings)]
    driver.bind([(p, p.spec.channel) for p in points])
    inputs = [p for p in points if p.direction is Direction.IN]
    outputs = [p for p in points if p.direction is Direction.OUT]
    driver.open()
    start = 1_000_000_000
    for k in range(cycles):
        now = start + k * period_ns
        _timed("read_inputs", partial(driver.read_inputs, now))
        for p in inputs:
            assert isinstance(p.quality, Quality), f"{p.name}: quality is not a hal.Quality"
            if fresh:
                assert p.timestamp_ns == now, f"{p.name}: timestamp {p.timestamp_ns} != {now}"
            else:
                assert p.timestamp_ns <= now, f"{p.name}: timestamp from the future"
            if p.quality is not Quality.BAD:
                _check_value(p)
        for p in outputs:
            if p.type.is_numeric:
                p.value = float(k % 10)
        _timed("write_outputs", partial(driver.write_outputs, now))
    _timed("close", driver.close)
    driver.close()  # closing twice is harmless (shutdown paths overlap)


def _check_value(p: Point) -> None:
    if p.type is IecType.BOOL:
        assert isinstance(p.value, bool), f"{p.name}: BOOL point latched {p.value!r}"
    elif p.type.is_numeric:
        assert isinstance(p.value, int | float) and not isinstance(p.value, bool), p.name
        assert math.isfinite(p.value), f"{p.name}: latched non-finite {p.value!r}"


def _check_snapshot(
    make_driver: Callable[[], Driver], driver: Driver, bindings: Sequence[PointSpec]
) -> None:
    snap = driver.snapshot()
    assert isinstance(snap, dict), "snapshot() must return a dict"
    text = json.dumps(snap, allow_nan=False)  # raises on non-JSON data or NaN
    other = make_driver()
    other.bind([(Point(spec), spec.channel) for spec in bindings])
    other.restore(json.loads(text))
    again = json.dumps(other.snapshot(), allow_nan=False)
    assert json.loads(again) == json.loads(text), "snapshot → restore → snapshot differs"

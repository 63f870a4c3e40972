"""The mqtt HAL driver against a real broker: contract, payloads, staleness, outputs, outages."""

from __future__ import annotations

import time
from typing import Any

import pytest

from hal import DriverError, Point, PointSpec, Quality, get_driver_factory
from runtime.drivers.mqtt import MqttDriver
from tests.drivers.device import Device, latches
from tests.hal.driver_contract import check_driver_contract
from tests.mqtt.broker import Broker

PREFIX = "test/dev"
CHANNELS: dict[str, Any] = {
    "temperature": "in",
    "running": {"direction": "in", "type": "BOOL"},
    "level": {"direction": "in", "staleness_s": 0.3},
    "valve": "out",
    "pump": "out",
}


def options(port: int, **extra: Any) -> dict[str, Any]:
    base = {"port": port, "prefix": PREFIX, "channels": CHANNELS, "staleness_s": 0.5}
    return base | {"open_wait_s": 2.0, "publish_ms": 10, "refresh_s": 0.5} | extra


def spec(name: str, channel: str, direction: str, type_: str = "LREAL") -> PointSpec:
    safe = (False if type_ == "BOOL" else 0.0) if direction == "out" else None
    return PointSpec(
        name=name, type=type_, direction=direction, driver="io", channel=channel, safe=safe
    )


def bound(port: int, specs: list[PointSpec], **extra: Any) -> tuple[MqttDriver, list[Point]]:
    driver = MqttDriver(name="io", options=options(port, **extra))
    points = [Point(s, i) for i, s in enumerate(specs)]
    driver.bind([(p, p.spec.channel) for p in points])
    return driver, points


def test_registered_as_entry_point_and_options_are_strict() -> None:
    assert get_driver_factory("mqtt") is MqttDriver
    with pytest.raises(DriverError, match="extra_forbidden"):
        MqttDriver(name="io", options={"prefix": "a", "channels": {"x": "in"}, "hots": "h"})
    with pytest.raises(DriverError, match="staleness_s applies to input"):
        MqttDriver(
            name="io",
            options={"prefix": "a", "channels": {"y": {"direction": "out", "staleness_s": 1}}},
        )
    with pytest.raises(DriverError, match="also used by"):
        chans = {"x": "in", "z": {"direction": "in", "topic": "a/sensors/x"}}
        MqttDriver(name="io", options={"prefix": "a", "channels": chans})
    d = MqttDriver(name="io", options={"prefix": "a", "channels": {"x": "in"}, "tls": None})
    with pytest.raises(DriverError, match="BOOL cannot carry channel 'x'"):
        d.bind([(Point(spec("B", "x", "in", "BOOL")), "x")])


def test_passes_the_driver_contract(broker: Broker, device: Device) -> None:
    device.feed({"temperature": 37.5, "running": True, "level": {"v": 40.0, "q": "GOOD"}})
    bindings = [
        spec("T", "temperature", "in"),
        spec("R", "running", "in", "BOOL"),
        spec("L", "level", "in", "INT"),
        spec("V", "valve", "out"),
        spec("P", "pump", "out", "DINT"),
    ]
    check_driver_contract(lambda: MqttDriver(name="io", options=options(broker.port)), bindings)


def test_payload_forms_and_quality(broker: Broker, device: Device) -> None:
    driver, (t, r) = bound(
        broker.port, [spec("T", "temperature", "in"), spec("R", "running", "in", "BOOL")],
        open_wait_s=0.0, staleness_s=5.0,
    )  # fmt: skip
    driver.open()
    Device.wait(lambda: driver.statistics()["connected"])
    try:
        cases: list[tuple[Any, float, Quality]] = [
            (36.5, 36.5, Quality.GOOD),
            ({"v": 36.6, "q": "UNCERTAIN", "ts": "x"}, 36.6, Quality.UNCERTAIN),
            ({"v": None, "q": "GOOD"}, 36.6, Quality.BAD),  # no reading: value kept, BAD
            ({"v": 36.7}, 36.7, Quality.GOOD),
            ("not json", 36.7, Quality.BAD),  # garbage from the device is BAD, and counted
            ({"v": "hot"}, 36.7, Quality.BAD),
            ({"v": 36.8, "q": "SORT_OF"}, 36.7, Quality.BAD),
        ]
        for k, (payload, value, quality) in enumerate(cases):
            device.send("temperature", payload, raw=payload == "not json")
            device.send("running", k % 2 == 0)
            want = 2 * (k + 1)
            Device.wait(lambda: bool(driver.statistics()["messages_in"] >= want))  # noqa: B023
            driver.read_inputs(k)
            assert (t.value, t.quality) == (value, quality), payload
            assert r.value is (k % 2 == 0) and r.quality is Quality.GOOD
        assert driver.statistics()["bad_payloads"] == 3
        # A retained reading says nothing about the device being alive now: ignored.
        device.send("temperature", 99.0, retain=True)
        Device.wait(lambda: driver.statistics()["messages_in"] >= 2 * len(cases) + 1)
    finally:
        driver.close()
        device.send("temperature", b"", retain=True, raw=True)  # clear the retained message
    late, (t2,) = bound(broker.port, [spec("T", "temperature", "in")], open_wait_s=0.5)
    device.send("temperature", 98.0, retain=True)
    late.open()
    try:
        late.read_inputs(1)
        assert t2.quality is Quality.BAD and late.statistics()["retained_ignored"] == 1
    finally:
        late.close()
        device.send("temperature", b"", retain=True, raw=True)


def test_inputs_turn_bad_after_their_staleness(broker: Broker, device: Device) -> None:
    driver, (t, lv) = bound(broker.port, [spec("T", "temperature", "in"), spec("L", "level", "in")])
    device.feed({"temperature": 20.0, "level": 50.0}, hz=20)
    driver.open()
    try:
        driver.read_inputs(1)
        assert t.quality is Quality.GOOD and lv.quality is Quality.GOOD
        device.stop_feed()
        stopped = time.monotonic()
        bad_at: dict[str, float] = {}
        while len(bad_at) < 2 and time.monotonic() - stopped < 3.0:
            driver.read_inputs(2)
            for p in (t, lv):
                if p.quality is Quality.BAD and p.name not in bad_at:
                    bad_at[p.name] = time.monotonic() - stopped
            time.sleep(0.01)
        # per-channel override 0.3 s, default 0.5 s; a feed period (50 ms) of slack each way
        assert 0.2 <= bad_at["L"] <= 0.45, bad_at
        assert 0.4 <= bad_at["T"] <= 0.65, bad_at
        assert (t.value, lv.value) == (20.0, 50.0)  # BAD keeps the last value
        stats = driver.statistics()
        assert stats["stale_channels"] == ["level", "temperature"]
        assert stats["stale_events"] == 2
        device.feed({"temperature": 21.0, "level": 51.0}, hz=20)
        Device.wait(latches(driver, t, Quality.GOOD))
        assert t.value == 21.0
    finally:
        driver.close()


def test_outputs_by_exception_with_refresh_and_safe_values_on_close(
    broker: Broker, device: Device
) -> None:
    driver, (v, p) = bound(
        broker.port, [spec("V", "valve", "out"), spec("P", "pump", "out")], refresh_s=0.4
    )
    driver.open()
    v.value, p.value = 10.0, 1.0
    for k in range(60):  # 0.6 s of 10 ms cycles, valve changing once
        if k == 30:
            v.value = 20.0
        driver.write_outputs(k)
        time.sleep(0.01)
    Device.wait(lambda: len(device.values("valve")) >= 3)
    valve = [b["v"] for b in device.values("valve")]
    pump = [b["v"] for b in device.values("pump")]
    # first publication, one change, one refresh (0.4 s): not one message per cycle
    assert valve[0] == 10.0 and 20.0 in valve and len(valve) <= 4, valve
    assert set(pump) == {1.0} and 2 <= len(pump) <= 3, pump
    assert "epoch" not in device.values("valve")[0]
    v.value = p.value = 0.0  # what the engine does at shutdown: safe values, one last write
    driver.write_outputs(99)
    driver.close()
    # Both safe values were sent before close() returned; their arrival order is the broker's.
    Device.wait(lambda: device.values("valve")[-1]["v"] == 0.0)
    Device.wait(lambda: device.values("pump")[-1]["v"] == 0.0)


def test_broker_outage_never_blocks_the_scan_and_recovers(own_broker: Broker) -> None:
    device = Device(own_broker.port, PREFIX)
    driver, (t, v) = bound(
        own_broker.port, [spec("T", "temperature", "in"), spec("V", "valve", "out")],
        reconnect_max_s=0.5,
    )  # fmt: skip
    device.feed({"temperature": 30.0}, hz=20)
    driver.open()
    try:
        own_broker.stop()
        device.close()
        worst = 0.0
        end = time.monotonic() + 1.5
        while time.monotonic() < end:  # the scan keeps its pace while the broker is gone
            t0 = time.perf_counter()
            driver.read_inputs(1)
            v.value += 1.0
            driver.write_outputs(1)
            worst = max(worst, time.perf_counter() - t0)
            time.sleep(0.005)
        assert worst < 0.005, worst
        assert t.quality is Quality.BAD and not driver.statistics()["connected"]
        own_broker.start()
        device = Device(own_broker.port, PREFIX)
        device.feed({"temperature": 31.0}, hz=20)
        Device.wait(latches(driver, t, Quality.GOOD), 5.0)
        assert t.value == 31.0 and driver.statistics()["connects"] == 2
        # after the reconnect every output is republished, not only the changed ones
        Device.wait(lambda: bool(device.values("valve")))
        assert device.values("valve")[-1]["v"] == v.value
    finally:
        driver.close()
        device.close()


def test_open_does_not_hang_without_a_broker() -> None:
    from tests.mqtt.broker import free_port

    driver, (t,) = bound(free_port(), [spec("T", "temperature", "in")], open_wait_s=0.3)
    t0 = time.monotonic()
    driver.open()
    driver.read_inputs(1)
    driver.close()
    assert time.monotonic() - t0 < 1.5
    assert t.quality is Quality.BAD
    assert driver.statistics()["connected"] is False

"""The `modbus` driver against pymodbus' own server: values, orders, polling, BAD, writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import ModbusTcpClient

from hal import Direction, DriverError, Point, PointSpec, Quality, get_driver_factory
from runtime.drivers._modbus_options import ModbusDriverOptions, plan_blocks
from runtime.drivers.modbus import ModbusDriver
from tests.drivers._poll import latch_until as latch
from tests.drivers._poll import wait
from tests.drivers.modbus_device import ChildDevice, PyModbusDevice
from tests.hal.driver_contract import check_driver_contract

ROOT = Path(__file__).resolve().parents[2]
DT = ModbusTcpClient.DATATYPE  # pymodbus' converters: an encoding independent of ours
CHANNELS: dict[str, Any] = {
    "temp": "input:0:float32",
    "count": {"table": "holding", "address": 2, "type": "uint32", "word_order": "little"},
    "level": {"table": "input", "address": 4, "type": "int16"},
    "energy": {"table": "input", "address": 5, "type": "float64"},
    "total": {"table": "holding", "address": 9, "type": "int64"},
    "swapped": {"table": "input", "address": 13, "type": "float32", "byte_order": "little"},
    "running": "discrete_input:3",
    "valve": "holding:100:float32",
    "speed": {"table": "holding", "address": 110, "type": "int16"},
    "pump": "coil:7",
}


def options(port: int, **extra: Any) -> dict[str, Any]:
    base = {"host": "127.0.0.1", "port": port, "channels": CHANNELS, "poll_ms": 20}
    return base | {"timeout_s": 0.2, "retries": 0, "open_wait_s": 2.0, "write_ms": 5} | extra


def spec(name: str, channel: str, direction: str, type_: str = "LREAL", **kw: Any) -> PointSpec:
    safe = (False if type_ == "BOOL" else 0.0) if direction == "out" else None
    return PointSpec(
        name=name, type=type_, direction=direction, driver="io", channel=channel,  # type: ignore[arg-type]
        safe=safe, **kw,
    )  # fmt: skip


@pytest.fixture
def device() -> Iterator[PyModbusDevice]:
    dev = PyModbusDevice()
    yield dev
    dev.close()


def bound(port: int, specs: list[PointSpec], **extra: Any) -> tuple[ModbusDriver, list[Point]]:
    driver = ModbusDriver(name="io", options=options(port, **extra))
    points = [Point(s, i) for i, s in enumerate(specs)]
    driver.bind([(p, s.channel) for p, s in zip(points, specs, strict=True)])
    return driver, points


def latch_until(driver: ModbusDriver, pred: Callable[[], bool], timeout: float = 3.0) -> float:
    """The shared latch with this module's shorter default (polls every 20 ms here)."""
    return latch(driver, pred, timeout)


def test_registered_by_entry_point() -> None:
    assert get_driver_factory("modbus") is ModbusDriver


def test_contract(device: PyModbusDevice) -> None:
    bindings = [
        spec("T", "temp", "in"), spec("R", "running", "in", "BOOL"),
        spec("V", "valve", "out"), spec("S", "speed", "out", "DINT"),
        spec("P", "pump", "out", "BOOL"),
    ]  # fmt: skip
    check_driver_contract(lambda: ModbusDriver(name="io", options=options(device.port)), bindings)


def test_types_orders_and_scaling(device: PyModbusDevice) -> None:
    device.set("input", 0, ModbusTcpClient.convert_to_registers(37.25, DT.FLOAT32))
    device.set("holding", 2, ModbusTcpClient.convert_to_registers(4_000_000_123, DT.UINT32,
                                                                  word_order="little"))  # fmt: skip
    device.set("input", 4, ModbusTcpClient.convert_to_registers(-1234, DT.INT16))
    device.set("input", 5, ModbusTcpClient.convert_to_registers(-1.0e100 / 3, DT.FLOAT64))
    device.set("holding", 9, ModbusTcpClient.convert_to_registers(-(2**62) - 4096, DT.INT64))
    # Byte order "little": each register's two bytes swapped (a "BADC" device).
    regs = ModbusTcpClient.convert_to_registers(-7.5, DT.FLOAT32)
    device.set("input", 13, [((r & 0xFF) << 8) | (r >> 8) for r in regs])
    device.set("discrete_input", 3, [1])
    scaled = {"raw": [0, 27648], "eng": [0, 150]}
    specs = [
        spec("T", "temp", "in"), spec("C", "count", "in"),
        spec("L", "level", "in", "REAL", scaling=scaled), spec("E", "energy", "in"),
        spec("TOT", "total", "in"), spec("SW", "swapped", "in"), spec("R", "running", "in", "BOOL"),
    ]  # fmt: skip
    driver, pts = bound(device.port, specs)
    driver.open()
    try:
        t, c, lvl, e, tot, sw, r = pts
        latch_until(driver, lambda: all(p.quality is Quality.GOOD for p in pts))
        assert t.value == 37.25 and c.value == 4_000_000_123
        assert lvl.value == pytest.approx(-1234 * 150 / 27648)  # the HAL's scaling
        # int64 into an LREAL point: exact for values a double holds (|v| ≤ 2**53, or even)
        assert e.value == -1.0e100 / 3 and tot.value == -(2**62) - 4096
        assert sw.value == -7.5 and r.value is True
        device.set("input", 0, ModbusTcpClient.convert_to_registers(38.5, DT.FLOAT32))
        latch_until(driver, lambda: t.value == 38.5)
    finally:
        driver.close()


def test_adjacent_addresses_are_coalesced() -> None:
    chans = {f"r{i}": f"holding:{i}:uint16" for i in range(300)} | {
        "f": "holding:301:float32", "far": "holding:400", "x": "input:0", "y": "input:1",
        "slow": {"table": "input", "address": 2, "group": "slow"},
    }  # fmt: skip
    opts = ModbusDriverOptions.model_validate(
        {"host": "h", "channels": chans, "poll_groups": {"slow": {"period_ms": 1000}}}
    )
    blocks = plan_blocks(opts, set(chans))
    got = sorted((b.group, b.table.value, b.address, b.count) for b in blocks)
    # 0..299 in 125-register requests; 301 is one unbound register away (max_gap 0), 400 far.
    assert got == [
        ("default", "holding", 0, 125), ("default", "holding", 125, 125),
        ("default", "holding", 250, 50), ("default", "holding", 301, 2),
        ("default", "holding", 400, 1), ("default", "input", 0, 2), ("slow", "input", 2, 1),
    ]  # fmt: skip
    gap = ModbusDriverOptions.model_validate(
        {"host": "h", "channels": chans, "max_gap": 1, "poll_groups": {"slow": {"period_ms": 1000}}}
    )
    assert ("default", "holding", 250, 53) in {
        (b.group, b.table.value, b.address, b.count) for b in plan_blocks(gap, set(chans))
    }


def test_one_request_per_block_per_poll(device: PyModbusDevice) -> None:
    chans = {f"r{i}": f"input:{i}" for i in range(40)}
    driver = ModbusDriver(name="io", options=options(device.port, channels=chans, poll_ms=50))
    pts = [Point(spec(n, n, "in", "DINT")) for n in chans]
    driver.bind([(p, p.spec.channel) for p in pts])
    driver.open()
    try:
        assert driver.link is not None
        reads0 = driver.link.stats["reads"]
        time.sleep(1.0)
        reads = driver.link.stats["reads"] - reads0
        assert 15 <= reads <= 22, reads  # one request for 40 registers, every 50 ms
    finally:
        driver.close()


def test_outputs_written_on_change_and_after_reconnect(device: PyModbusDevice) -> None:
    specs = [spec("V", "valve", "out"), spec("S", "speed", "out", "DINT"),
             spec("P", "pump", "out", "BOOL")]  # fmt: skip
    driver, (v, s, p) = bound(device.port, specs)
    driver.open()
    try:
        v.value, s.value, p.value = 42.5, -300, True
        driver.write_outputs(0)
        f32 = lambda: ModbusTcpClient.convert_from_registers(device.get("holding", 100, 2),  # noqa: E731
                                                             DT.FLOAT32)  # fmt: skip
        wait(lambda: f32() == 42.5 and device.get("coil", 7) == [1], what="outputs written")
        assert ModbusTcpClient.convert_from_registers(device.get("holding", 110), DT.INT16) == -300
        s.value = 70000  # an int16 cannot hold it: clamped and counted
        driver.write_outputs(0)
        wait(lambda: device.get("holding", 110) == [32767], what="clamped write")
        assert driver.statistics()["clamped_writes"] >= 1
    finally:
        driver.close()


def test_outputs_rewritten_after_the_device_restarts() -> None:
    dev = ChildDevice(str(ROOT))
    driver, (v, p) = bound(dev.port, [spec("V", "valve", "out"), spec("P", "pump", "out", "BOOL")])
    driver.open()
    try:
        v.value, p.value = 42.5, True
        driver.write_outputs(0)

        def written(d: ChildDevice) -> bool:
            c = d.client()
            try:
                regs = c.read_holding_registers(100, count=2, device_id=1).registers
                coil = c.read_coils(7, count=1, device_id=1).bits[0]
            finally:
                c.close()
            return bool(ModbusTcpClient.convert_from_registers(regs, DT.FLOAT32) == 42.5 and coil)

        wait(lambda: written(dev), what="outputs written")
        port = dev.port
        dev.close()  # killed: the restarted device has empty tables
        wait(lambda: not driver.statistics()["connected"], what="connection lost seen")
        dev = ChildDevice(str(ROOT), port=port)
        wait(lambda: written(dev), 10, "outputs written again after reconnect")
        assert driver.statistics()["connects"] == 2
    finally:
        driver.close()
        dev.close()


def f32_of(dev: PyModbusDevice) -> float:
    return float(ModbusTcpClient.convert_from_registers(dev.get("holding", 100, 2), DT.FLOAT32))  # type: ignore[arg-type]


def test_close_writes_the_safe_values(device: PyModbusDevice) -> None:
    driver, (v,) = bound(device.port, [spec("V", "valve", "out")])
    driver.open()
    v.value = 12.0
    driver.write_outputs(0)
    wait(lambda: f32_of(device) == 12.0)
    v.value = v.safe_value  # what the engine does on stop
    driver.write_outputs(0)
    driver.close()
    assert f32_of(device) == 0.0


def test_a_device_that_stops_answering_turns_bad_in_time() -> None:
    dev = ChildDevice(str(ROOT))
    try:
        chans = {"a": "holding:3", "b": "input:5"}
        driver = ModbusDriver(
            name="io", options=options(dev.port, channels=chans, poll_ms=100, timeout_s=0.3)
        )
        a, b = Point(spec("A", "a", "in", "DINT")), Point(spec("B", "b", "in", "DINT"))
        driver.bind([(a, "a"), (b, "b")])
        driver.open()
        try:
            latch_until(driver, lambda: a.quality is Quality.GOOD and b.quality is Quality.GOOD)
            assert (a.value, b.value) == (1003, 2005)
            dev.freeze()  # the connection stays up; nothing answers any more
            took = latch_until(
                driver, lambda: a.quality is Quality.BAD and b.quality is Quality.BAD
            )
            print(f"BAD {took:.3f} s after the device froze (period 0.1 + timeout 0.3)")
            assert took <= 0.1 + 0.3 + 0.05, took
            dev.thaw()
            latch_until(driver, lambda: a.quality is Quality.GOOD, 10)
        finally:
            driver.close()
    finally:
        dev.close()


def test_exception_response_is_bad_not_fatal(device: PyModbusDevice) -> None:
    chans = {"ok": "input:1", "nowhere": "input:5000"}  # past the device's 4096 registers
    driver = ModbusDriver(name="io", options=options(device.port, channels=chans))
    ok, nowhere = Point(spec("OK", "ok", "in", "DINT")), Point(spec("NW", "nowhere", "in", "DINT"))
    driver.bind([(ok, "ok"), (nowhere, "nowhere")])
    driver.open()
    try:
        latch_until(driver, lambda: ok.quality is Quality.GOOD)
        driver.read_inputs(1)
        assert nowhere.quality is Quality.BAD
        assert driver.statistics()["read_errors"] >= 1
    finally:
        driver.close()


@pytest.mark.parametrize(
    ("channel", "direction", "type_", "match"),
    [
        ("level", "out", "LREAL", "read-only"),
        ("running", "in", "LREAL", "BOOL points go to coils"),
        ("temp", "in", "BOOL", "BOOL points go to coils"),
        ("ghost", "in", "LREAL", "no declared channel"),
    ],
)
def test_bind_refusals(channel: str, direction: str, type_: str, match: str) -> None:
    driver = ModbusDriver(name="io", options=options(1))
    with pytest.raises(DriverError, match=match):
        driver.bind([(Point(spec("X", channel, direction, type_)), channel)])


def test_two_outputs_on_one_register_are_refused() -> None:
    chans = {"a": "holding:10:float32", "b": "holding:11"}
    driver = ModbusDriver(name="io", options=options(1, channels=chans))
    pts = [(Point(spec("A", "a", "out")), "a"), (Point(spec("B", "b", "out")), "b")]
    with pytest.raises(DriverError, match="both write unit 1 holding 11"):
        driver.bind(pts)


def test_direction_of_writable_tables() -> None:
    driver = ModbusDriver(name="io", options=options(1))
    ch = driver.channels()
    assert ch["valve"].directions == {Direction.IN, Direction.OUT}
    assert ch["level"].directions == {Direction.IN}

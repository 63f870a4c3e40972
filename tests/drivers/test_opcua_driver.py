"""The `opcua` driver against an asyncua server on its own thread: values, quality, staleness,
writes, reconnect, wrong NodeIds, security, and broken options as exit 2 naming the key."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua

from hal import Direction, DriverError, Point, PointSpec, Quality, get_driver_factory
from runtime.drivers.opcua import OpcuaDriver
from tests.conftest import COPY_LOGIC, memory_manifest, write_app
from tests.drivers._poll import latch_until, wait
from tests.drivers.opcua_device import VARS, OpcuaDevice
from tests.hal.driver_contract import check_driver_contract

VPLC = str(Path(sys.executable).with_name("vplc"))
CHANNELS = ("temp", "level", "running", "name", "valve", "pump")


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VPLC_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def device(tmp_path: Path) -> Iterator[OpcuaDevice]:
    dev = OpcuaDevice(tmp_path / "device-pki")
    yield dev
    dev.close()


def options(dev: OpcuaDevice, **extra: Any) -> dict[str, Any]:
    chans = {c: dev.node(c) for c in CHANNELS}
    base = {"endpoint": dev.endpoint, "channels": chans, "sampling_ms": 20, "timeout_s": 1.0}
    return base | {"open_wait_s": 5.0, "write_ms": 5, "reconnect_max_s": 0.3} | extra


def spec(name: str, channel: str, direction: str, type_: str = "LREAL") -> PointSpec:
    safe = (False if type_ == "BOOL" else 0.0) if direction == "out" else None
    return PointSpec(
        name=name, type=type_, direction=direction, driver="io", channel=channel,  # type: ignore[arg-type]
        safe=safe,
    )  # fmt: skip


def bound(
    dev: OpcuaDevice, specs: list[PointSpec], **extra: Any
) -> tuple[OpcuaDriver, list[Point]]:
    driver = OpcuaDriver(name="io", options=options(dev, **extra))
    points = [Point(s, i) for i, s in enumerate(specs)]
    driver.bind([(p, s.channel) for p, s in zip(points, specs, strict=True)])
    return driver, points


def test_registered_by_entry_point() -> None:
    assert get_driver_factory("opcua") is OpcuaDriver


def test_contract(device: OpcuaDevice) -> None:
    device.set("temp", 1.0)
    device.set("running", True)
    bindings = [
        spec("T", "temp", "in"), spec("R", "running", "in", "BOOL"),
        spec("V", "valve", "out"), spec("P", "pump", "out", "BOOL"),
    ]  # fmt: skip
    check_driver_contract(lambda: OpcuaDriver(name="io", options=options(device)), bindings)


def test_values_and_quality_from_status_codes(device: OpcuaDevice) -> None:
    device.set("temp", 37.25)
    device.set("running", True)
    device.set("name", "batch-7")
    driver, (t, r, n) = bound(
        device, [spec("T", "temp", "in"), spec("R", "running", "in", "BOOL"),
                 spec("N", "name", "in", "STRING")]
    )  # fmt: skip
    driver.open()
    try:
        latch_until(driver, lambda: t.value == 37.25 and r.value is True and n.value == "batch-7")
        assert t.quality is Quality.GOOD
        device.set_status("temp", 37.5, ua.StatusCodes.UncertainLastUsableValue)
        latch_until(driver, lambda: t.quality is Quality.UNCERTAIN)
        assert t.value == 37.5
        device.set("temp", None, good=False)  # Bad, no value: the last value, BAD
        latch_until(driver, lambda: t.quality is Quality.BAD)
        assert t.value == 37.5
        device.set("temp", 38.0)
        latch_until(driver, lambda: t.quality is Quality.GOOD and t.value == 38.0)
        stats = driver.statistics()
        assert stats["connected"] and stats["notifications"] >= 6, stats
    finally:
        driver.close()


def test_an_unchanging_input_stays_good_on_keepalives(device: OpcuaDevice) -> None:
    device.set("temp", 5.0)
    driver, (t,) = bound(device, [spec("T", "temp", "in")], sampling_ms=20, keepalive_count=2)
    driver.open()
    try:
        latch_until(driver, lambda: t.value == 5.0)
        stale_s = driver.options.stale_s(driver.period_ms)
        deadline = time.monotonic() + 3 * stale_s
        while time.monotonic() < deadline:  # no change for 3× the staleness time
            driver.read_inputs(time.monotonic_ns())
            assert t.quality is Quality.GOOD, driver.statistics()
            time.sleep(0.01)
        assert driver.statistics()["keepalives"] > 0
    finally:
        driver.close()


def test_outputs_written_on_change_and_after_the_server_restarts(device: OpcuaDevice) -> None:
    driver, (t, v, p) = bound(
        device, [spec("T", "temp", "in"), spec("V", "valve", "out"),
                 spec("P", "pump", "out", "BOOL")]
    )  # fmt: skip
    driver.open()
    try:
        v.value, p.value = 42.5, True
        driver.write_outputs(0)
        wait(lambda: device.value("valve") == 42.5 and device.value("pump") is True)
        writes = driver.statistics()["writes"]
        for _ in range(20):  # unchanged: nothing more is written
            driver.write_outputs(0)
            time.sleep(0.005)
        assert driver.statistics()["writes"] == writes
        v.value = 43.0
        driver.write_outputs(0)
        wait(lambda: device.value("valve") == 43.0)

        device.stop()  # the server goes away: inputs BAD within the staleness time
        took = latch_until(driver, lambda: t.quality is Quality.BAD, 5.0)
        assert took <= driver.options.stale_s(driver.period_ms) + 0.5, took
        device.start()  # back, with its variables at zero: the outputs are written again
        wait(lambda: device.value("valve") == 43.0 and device.value("pump") is True, 10.0,
             "outputs re-written after reconnect")  # fmt: skip
        device.set("temp", 7.0)
        latch_until(driver, lambda: t.quality is Quality.GOOD and t.value == 7.0, 10.0)
        assert driver.statistics()["connects"] >= 2
        v.value, p.value = 0.0, False  # what the engine does before close: the safe values
        driver.write_outputs(0)
    finally:
        driver.close()
    assert device.value("valve") == 0.0 and device.value("pump") is False  # written on close


def test_wrong_node_ids_are_named_and_bad_while_the_rest_works(device: OpcuaDevice) -> None:
    opts = options(device)
    opts["channels"] = dict(opts["channels"]) | {
        "temp": "nsu=urn:vplc:test:device;s=nope", "valve": "ns=7;s=gone",
    }  # fmt: skip
    driver = OpcuaDriver(name="io", options=opts)
    tt = Point(spec("TT101", "temp", "in"), 0)
    run = Point(spec("X", "running", "in", "BOOL"), 1)
    valve = Point(spec("V", "valve", "out"), 2)
    driver.bind([(tt, "temp"), (run, "running"), (valve, "valve")])
    device.set("running", True)
    driver.open()  # does not raise: one wrong entry does not take the controller down
    try:
        latch_until(driver, lambda: run.value is True and run.quality is Quality.GOOD)
        assert tt.quality is Quality.BAD
        text = "; ".join(driver.statistics()["binding_errors"])
        assert "'TT101'" in text and "s=nope" in text and "BadNodeIdUnknown" in text, text
        assert "'V'" in text and "ns=7;s=gone" in text, text
        valve.value = 5.0
        driver.write_outputs(0)
        time.sleep(0.1)
        assert driver.statistics()["writes"] == 0  # nothing sent to a node that is not there
    finally:
        driver.close()


def test_a_node_gone_after_a_restart_is_bad_and_named_until_it_is_back(
    device: OpcuaDevice,
) -> None:
    device.set("temp", 1.5)
    driver, (t, r) = bound(device, [spec("T", "temp", "in"), spec("R", "running", "in", "BOOL")])
    driver.open()
    try:
        latch_until(driver, lambda: t.value == 1.5 and t.quality is Quality.GOOD)
        device.stop()
        device.variables = [v for v in device.variables if v.name != "temp"]
        device.start()  # a new server configuration without the node
        wait(lambda: bool(driver.statistics()["binding_errors"]), 10.0, "binding error")
        text = driver.statistics()["binding_errors"][0]
        assert "'T'" in text and "s=temp" in text and "BadNodeIdUnknown" in text, text
        device.set("running", True)  # the others work meanwhile
        latch_until(driver, lambda: r.value is True and r.quality is Quality.GOOD, 10.0)
        assert t.quality is Quality.BAD
        device.stop()
        device.variables = list(VARS)
        device.start()
        device.set("temp", 2.5)
        latch_until(driver, lambda: t.value == 2.5 and t.quality is Quality.GOOD, 10.0)
        assert driver.statistics()["binding_errors"] == []
    finally:
        driver.close()


def test_a_type_the_point_cannot_carry_is_named_and_bad(device: OpcuaDevice) -> None:
    driver, (r,) = bound(device, [spec("R", "running", "in")])  # a Boolean node as LREAL
    driver.open()
    try:
        wait(lambda: bool(driver.statistics()["binding_errors"]), 5.0, "binding error")
        assert re.search(r"point 'R'.*Boolean.*LREAL", driver.statistics()["binding_errors"][0])
        driver.read_inputs(time.monotonic_ns())
        assert r.quality is Quality.BAD
    finally:
        driver.close()


def test_each_secure_policy_and_none(device: OpcuaDevice) -> None:
    device.set("temp", 3.0)
    for policy in ("Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "None"):
        driver, (t,) = bound(device, [spec("T", "temp", "in")], security_policy=policy)
        driver.open()
        try:
            latch_until(driver, lambda: t.value == 3.0 and t.quality is Quality.GOOD)  # noqa: B023
            assert driver.statistics()["connects"] == 1
        finally:
            driver.close()


def test_a_policy_the_server_does_not_offer_never_connects(tmp_path: Path) -> None:
    dev = OpcuaDevice(tmp_path / "pki2", policies=("Basic256Sha256",))
    try:
        driver, (t,) = bound(dev, [spec("T", "temp", "in")], security_policy="None", open_wait_s=1)
        driver.open()
        try:
            latch_until(driver, lambda: driver.statistics()["connect_failures"] >= 1)
            assert t.quality is Quality.BAD
            assert not driver.statistics()["connected"]
        finally:
            driver.close()
    finally:
        dev.close()


def test_bind_refusals(device: OpcuaDevice) -> None:
    driver = OpcuaDriver(name="io", options=options(device))
    with pytest.raises(DriverError, match="no declared channel 'nope'"):
        driver.bind([(Point(spec("A", "nope", "in")), "nope")])
    with pytest.raises(DriverError, match="already bound"):
        driver.bind([(Point(spec("A", "temp", "in")), "temp"),
                     (Point(spec("B", "temp", "in"), 1), "temp")])  # fmt: skip
    typed = options(device) | {"channels": {"t": {"node": "ns=2;s=temp", "type": "BOOL"}}}
    with pytest.raises(DriverError, match="cannot carry"):
        OpcuaDriver(name="io", options=typed).bind([(Point(spec("A", "t", "in")), "t")])


def manifest(options: dict[str, Any]) -> dict[str, Any]:
    m = memory_manifest()
    m["drivers"] = {"plc": {"type": "opcua", "options": options}}
    for p in m["points"]:
        p["driver"] = "plc"
    return m


GOOD = {"endpoint": "opc.tcp://127.0.0.1:4840", "channels": {"x": "ns=2;s=X", "y": "ns=2;s=Y"}}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (GOOD | {"colour": 1}, "at drivers.plc.options.colour: unknown key"),
        (GOOD | {"endpoint": "http://x"}, "at drivers.plc.options.endpoint"),
        (GOOD | {"channels": {"x": "ns=2;q=X", "y": "ns=2;s=Y"}},
         "at drivers.plc.options.channels.x.node"),
        (GOOD | {"security_policy": "Basic128Rsa15"}, "at drivers.plc.options.security_policy"),
        (GOOD | {"security_policy": "None", "username": "u", "password_env": "P"},
         "would send the password readable"),
        (GOOD | {"certificate": "c.der"}, "certificate and private_key: give both"),
        (GOOD | {"sampling_ms": -1}, "at drivers.plc.options.sampling_ms"),
    ],
)  # fmt: skip
def test_validate_exits_2_naming_the_key(
    tmp_path: Path, options: dict[str, Any], expected: str
) -> None:
    app = write_app(tmp_path / "app", manifest(options), COPY_LOGIC)
    out = subprocess.run([VPLC, "validate", str(app)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert expected in out.stderr, out.stderr
    assert "app.yaml" in out.stderr


def test_a_valid_binding_validates(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", manifest(GOOD), COPY_LOGIC)
    out = subprocess.run([VPLC, "validate", str(app)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out


def test_direction_is_free_per_binding() -> None:
    driver = OpcuaDriver(name="io", options=GOOD)
    assert driver.channels()["x"].directions == {Direction.IN, Direction.OUT}

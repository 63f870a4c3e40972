"""The `opcua` driver against vplc's own OPC UA server: SignAndEncrypt, the server's trust list
and a user name login; its output is a parameter write on the server's command path."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hal import Point, PointSpec, Quality
from runtime.drivers.opcua import OpcuaDriver
from tests.opcua.conftest import NAMESPACE, PASSWORDS, Run, start_run, stop_run

Cert = tuple[Path, Path]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, client_cert: Cert) -> Iterator[Run]:
    run = start_run(tmp_path_factory.mktemp("opcua-driver"), trust=(client_cert[0],))
    yield run
    stop_run(run)


def driver_for(run: Run, cert: Cert, user: str, tmp_path: Path, **extra: Any) -> OpcuaDriver:
    secret = tmp_path / f"{user}.pw"
    secret.write_text(PASSWORDS[user] + "\n")
    opts = {
        "endpoint": run.url, "security_policy": "Basic256Sha256",
        "certificate": str(cert[0]), "private_key": str(cert[1]),
        "application_uri": "urn:vplc:test-client",  # the one in the trusted certificate
        "username": user, "password_file": str(secret), "open_wait_s": 10.0,
        "sampling_ms": 50, "write_ms": 5,
        "channels": {
            "tt": f"nsu={NAMESPACE};s=Points.TT101",
            "do_sp": f"nsu={NAMESPACE};s=Parameters.do_sp",
        },
    } | extra  # fmt: skip
    return OpcuaDriver(name="scada", options=opts)


def _bind(driver: OpcuaDriver) -> tuple[Point, Point]:
    tt = Point(PointSpec(name="TT", type="REAL", direction="in", driver="d", channel="tt"), 0)
    sp = Point(PointSpec(name="SP", type="REAL", direction="out", driver="d", channel="do_sp",
                         safe=40.0), 1)  # fmt: skip
    driver.bind([(tt, "tt"), (sp, "do_sp")])
    return tt, sp


def wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.02)


def test_operator_reads_points_and_writes_a_parameter_audited(
    served: Run, client_cert: Cert, tmp_path: Path
) -> None:
    driver = driver_for(served, client_cert, "olga", tmp_path)
    tt, sp = _bind(driver)
    driver.open()
    try:

        def fresh() -> bool:
            driver.read_inputs(time.monotonic_ns())
            return tt.quality is Quality.GOOD and 0 < tt.value < 150

        wait(fresh, 10, "TT101 read GOOD")
        sp.value = 41.5
        driver.write_outputs(0)
        wait(lambda: any(r.get("cmd") == "set_parameter" and r.get("new") == 41.5
                         for r in served.audit()), 10, "audited write")  # fmt: skip
    finally:
        driver.close()
    record = [r for r in served.audit() if r.get("new") == 41.5][-1]
    assert record["user"] == "olga" and record["status"] == "accepted", record
    assert record["target"] == "do_sp"


def test_a_viewer_login_reads_but_its_writes_are_refused(
    served: Run, client_cert: Cert, tmp_path: Path
) -> None:
    driver = driver_for(served, client_cert, "vera", tmp_path)
    tt, sp = _bind(driver)
    driver.open()
    try:
        sp.value = 43.0
        driver.write_outputs(0)
        wait(lambda: driver.statistics()["write_errors"] >= 1, 10, "refused write")
        assert "BadUserAccessDenied" in driver.statistics()["last_error"]
        driver.read_inputs(time.monotonic_ns())
        assert tt.quality is Quality.GOOD
    finally:
        driver.close()


def test_a_wrong_password_never_connects(served: Run, client_cert: Cert, tmp_path: Path) -> None:
    driver = driver_for(served, client_cert, "olga", tmp_path, open_wait_s=1.0)
    (tmp_path / "olga.pw").write_text("not-the-password\n")
    tt, _ = _bind(driver)
    driver.open()
    try:
        wait(lambda: driver.statistics()["connect_failures"] >= 1, 10, "refused login")
        assert not driver.statistics()["connected"]
        driver.read_inputs(time.monotonic_ns())
        assert tt.quality is Quality.BAD
        assert "BadUserAccessDenied" in driver.statistics()["last_error"]
    finally:
        driver.close()

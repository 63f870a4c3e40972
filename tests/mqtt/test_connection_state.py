"""Loud connection state: failed connects logged from the first attempt, collisions explained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from structlog.testing import capture_logs

from containers._status import scan_summary
from containers.cli import _mqtt_problems
from runtime import ScanEngine
from runtime.host._connections import connection_lines, mqtt_connections
from runtime.host._heartbeat import Heartbeat
from runtime.host._view import LiveView
from tests.mqtt.broker import Broker, make_certificates, refusing_port
from tests.mqtt.conftest import NODE, SITE, BridgeFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event of the test (the bridge binds its logger when it is built)."""
    with capture_logs() as captured:
        yield captured


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in list(logs) if e["event"] == name]


def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.02)


def _fast(**kw: Any) -> dict[str, Any]:
    return {"reconnect_min_s": 0.05, "reconnect_max_s": 0.1, "connect_timeout_s": 2.0} | kw


def test_wrong_password_is_logged_at_the_first_attempt_then_rate_limited(
    make_bridge: BridgeFactory,
    tls_broker: tuple[Broker, dict[str, Path]],
    logs: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, certs = tls_broker
    monkeypatch.setenv("VPLC_TEST_BAD_PW", "not-the-password")
    bridge = make_bridge(
        **_fast(port=broker.port, host="localhost", username="vplc"),
        password_env="VPLC_TEST_BAD_PW",
        tls={"ca_file": str(certs["ca"])},
    )
    _wait(lambda: _events(logs, "mqtt_connect_failed"), 3, "the first failure's log line")
    first = _events(logs, "mqtt_connect_failed")[0]
    assert first["reason"] == "auth" and first["attempts"] == 1
    assert "password" in first["hint"] and first["endpoint"].startswith("mqtts://localhost")
    _wait(lambda: bridge.statistics()["connect_failures"] >= 5, 5, "five failed attempts")
    # The same reason again and again: one line (the next after 10 s), not one per attempt.
    assert len(_events(logs, "mqtt_connect_failed")) == 1
    conn = bridge.statistics()["connection"]
    assert conn["reason"] == "auth" and not conn["connected"] and conn["failed_attempts"] >= 5


def test_untrusted_broker_certificate_is_a_tls_failure(
    make_bridge: BridgeFactory,
    tls_broker: tuple[Broker, dict[str, Path]],
    logs: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, _ = tls_broker
    other_ca = make_certificates(tmp_path / "other")["ca"]  # not the CA of the broker
    monkeypatch.setenv("VPLC_TEST_PW", "broker-pw")
    make_bridge(
        **_fast(port=broker.port, host="localhost", username="vplc"),
        password_env="VPLC_TEST_PW",
        tls={"ca_file": str(other_ca)},
    )
    _wait(lambda: _events(logs, "mqtt_connect_failed"), 3, "the failure's log line")
    failure = _events(logs, "mqtt_connect_failed")[0]
    assert failure["reason"] == "tls" and "certificate" in failure["error"]
    assert failure["attempts"] == 1


def test_dead_port_is_logged_and_the_recovery_too(
    make_bridge: BridgeFactory, own_broker: Broker, logs: list[dict[str, Any]]
) -> None:
    own_broker.stop()
    bridge = make_bridge(**_fast(port=own_broker.port))
    _wait(lambda: _events(logs, "mqtt_connect_failed"), 3, "the failure's log line")
    failure = _events(logs, "mqtt_connect_failed")[0]
    assert failure["reason"] == "refused" and failure["attempts"] == 1
    assert str(own_broker.port) in failure["error"]
    _wait(lambda: bridge.statistics()["connect_failures"] >= 3, 5, "more failed attempts")
    own_broker.start()
    assert bridge.connected.wait(5)
    back = [e for e in _events(logs, "mqtt_connected") if e.get("failed_attempts")]
    assert back and back[0]["last_reason"] == "refused" and back[0]["recovered_after_s"] > 0


def test_unknown_host_is_a_dns_failure(make_bridge: BridgeFactory, logs: list[dict[str, Any]]):
    make_bridge(**_fast(host="no-such-broker.invalid", port=1883))
    _wait(lambda: _events(logs, "mqtt_connect_failed"), 10, "the failure's log line")
    assert _events(logs, "mqtt_connect_failed")[0]["reason"] == "dns"


def test_heartbeat_summary_and_status_show_a_down_connection(
    make_bridge: BridgeFactory, engine: ScanEngine, tmp_path: Path
) -> None:
    with refusing_port() as port:
        bridge = make_bridge(**_fast(port=port))
        _wait(lambda: bridge.statistics()["connect_failures"] >= 1, 3, "a failed attempt")
        _check_down_connection(bridge, engine, tmp_path, port)


def _check_down_connection(bridge: Any, engine: ScanEngine, tmp_path: Path, port: int) -> None:
    who = bridge.session.name
    ours = [c for c in mqtt_connections() if c["who"] == who]
    assert ours and ours[0]["reason"] == "refused" and not ours[0]["connected"]
    line = next(x for x in connection_lines(ours))
    assert "DOWN (refused)" in line and f"127.0.0.1:{port}" in line
    heartbeat = Heartbeat(engine, tmp_path / "hb.json", interval_s=60)
    heartbeat.write()
    heartbeat.close()
    beat = json.loads((tmp_path / "hb.json").read_text())
    summary = scan_summary(beat)
    assert summary is not None
    row = next(c for c in summary["mqtt"] if c["who"] == who)
    assert row["reason"] == "refused" and row["connected"] is False
    problems = _mqtt_problems([row])
    assert problems and "DOWN" in problems[0] and "connection refused" in problems[0]
    console = Console(record=True, width=200)
    console.print(LiveView(engine).render())
    screen = console.export_text()
    assert "MQTT" in screen and "DOWN refused" in screen and who in screen


def test_two_instances_with_one_client_id_are_reported(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    """A second runtime as this node (same site/node/app, so the same default client id)."""
    first = make_bridge(reconnect_max_s=30.0)
    assert first.connected.wait(5)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/mqtt/bridge_proc.py"),
            str(engine.app.app_dir),
            str(broker.port),
            SITE,
            NODE,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        _wait(
            lambda: first.statistics()["connection"]["collision"] is not None,
            20,
            "the collision report",
        )
        explanation = first.statistics()["connection"]["collision"]
        assert "same client id 'vplc-plant1-edge7-testapp'" in explanation
        assert "its own node" in explanation
        assert f"pid {proc.pid}" in explanation
        t0, connects0 = time.monotonic(), first.statistics()["connects"]
        time.sleep(6.0)
        # The backoff is not reset by sessions that the twin cuts short: no storm of flaps.
        flaps = first.statistics()["connects"] - connects0
        assert flaps <= 4, f"{flaps} reconnects in {time.monotonic() - t0:.1f} s"
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    # The other instance found us as well, and said so in its log.
    assert b"mqtt_client_id_collision" in err, err[-3000:]


def test_a_restart_after_a_crash_is_not_a_collision(
    make_bridge: BridgeFactory, broker: Broker, engine: ScanEngine
) -> None:
    """The crashed run's will (and its client id taken over) must not look like a twin."""
    node = "crashnode"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests/mqtt/bridge_proc.py"),
            str(engine.app.app_dir),
            str(broker.port),
            SITE,
            node,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    finally:
        proc.kill()
        proc.wait(5)
    successor = make_bridge(node=node)
    assert successor.connected.wait(5)
    time.sleep(1.5)
    assert successor.statistics()["connection"]["collision"] is None

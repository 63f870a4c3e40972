"""`vplc sim serve` secured like the bridge: TLS and login, loud failures, claimed writes only."""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import time
from pathlib import Path

import yaml

from hal import Direction, IecType, Point, PointSpec
from runtime.drivers.mqtt import MqttDriver
from tests.hil.conftest import VPLC, ServeFactory, wait_until
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import BROKER_USERS, hmi_client, tls_broker

__all__ = ["tls_broker"]  # the fixture, reused


def _broker_file(tmp_path: Path, port: int, ca: Path, pw_env: str) -> Path:
    path = tmp_path / "broker.yaml"
    cfg = {"host": "localhost", "port": port, "username": "vplc", "password_env": pw_env,
           "tls": {"ca_file": str(ca)}}  # fmt: skip
    path.write_text(yaml.safe_dump(cfg))
    return path


def _serve(tmp_path: Path, prefix: str, broker_file: Path, password: str) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "VPLC_TEST_SIM_PW": password}
    return subprocess.Popen(
        [VPLC, "sim", "serve", "--broker", str(broker_file), "--prefix", prefix,
         "--stats-s", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip


def test_sim_serve_over_tls_with_login_drives_a_claimed_driver(
    tls_broker: tuple[Broker, dict[str, Path]], tmp_path: Path
) -> None:
    broker, certs = tls_broker
    prefix = "vplc/sim/tls"
    path = _broker_file(tmp_path, broker.port, certs["ca"], "VPLC_TEST_SIM_PW")
    proc = _serve(tmp_path, prefix, path, BROKER_USERS["vplc"])
    (tmp_path / "pw").write_text(BROKER_USERS["vplc"])
    options = {
        "host": "localhost", "port": broker.port, "username": "vplc",
        "password_file": str(tmp_path / "pw"), "tls": {"ca_file": str(certs["ca"])},
        "prefix": prefix, "owner_epoch": 1, "publish_ms": 10,
        "channels": {"heating_valve": "out", "temperature": "in"},
    }  # fmt: skip
    driver = MqttDriver(name="tls-io", options=options)
    valve = Point(PointSpec(name="V", type=IecType.REAL, direction=Direction.OUT,
                            driver="tls-io", channel="heating_valve", safe=0.0))  # fmt: skip
    temp = Point(PointSpec(name="T", type=IecType.REAL, direction=Direction.IN,
                           driver="tls-io", channel="temperature"))  # fmt: skip
    driver.bind([(valve, "heating_valve"), (temp, "temperature")])
    try:

        async def watch() -> None:
            ctx = ssl.create_default_context(cafile=str(certs["ca"]))
            async with hmi_client(
                broker.port, f"{prefix}/#", username="hmi",
                password=BROKER_USERS["hmi"], tls_context=ctx,
            ) as hmi:  # fmt: skip
                status = await hmi.wait_for(f"{prefix}/status", lambda b: b["status"] == "online")
                assert status["require_claim"] is True
                await hmi.wait_for(f"{prefix}/sensors/temperature", timeout=10)
                driver.open()
                valve.value = 42.0
                driver.write_outputs(0)
                stats = await hmi.wait_for(
                    f"{prefix}/stats",
                    lambda s: s["owner_epoch"] == 1 and s["actuators"]["heating_valve"] == 42.0,
                    timeout=10,
                )
                assert stats["writes"]["refused_unclaimed"] == 0

        asyncio.run(watch())
        driver.read_inputs(1)
        assert temp.quality.name == "GOOD"
    finally:
        driver.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert "mqtts://localhost" in out and "mqtt_connected" in out


def test_sim_serve_wrong_password_is_logged_at_once_and_retried(
    tls_broker: tuple[Broker, dict[str, Path]], tmp_path: Path
) -> None:
    broker, certs = tls_broker
    path = _broker_file(tmp_path, broker.port, certs["ca"], "VPLC_TEST_SIM_PW")
    proc = _serve(tmp_path, "vplc/sim/badpw", path, "not-the-password")
    time.sleep(3.0)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert alive, out  # a refused login is retried with backoff, the plant keeps running
    failures = [line for line in out.splitlines() if "mqtt_connect_failed" in line]
    assert len(failures) == 1 and "reason=auth" in failures[0], out


def test_anonymous_actuator_write_is_refused_by_default(
    broker: Broker, serve: ServeFactory
) -> None:
    _, watch = serve("vplc/sim/anon", "--stats-s", "0.2")
    watch.publish("actuators/heating_valve", 55.0)  # no claim, no epoch: anyone could do this
    wait_until(
        lambda: (watch.last("stats") or {}).get("writes", {}).get("refused_unclaimed", 0) >= 1,
        5,
        "the refusal counted",
    )
    assert watch.last("stats")["actuators"]["heating_valve"] == 0.0
    # A bench that wants it says so: --allow-unclaimed.
    _, open_watch = serve("vplc/sim/anon-open", "--stats-s", "0.2", "--allow-unclaimed")
    open_watch.publish("actuators/heating_valve", 55.0)
    wait_until(
        lambda: (open_watch.last("stats") or {}).get("actuators", {}).get("heating_valve") == 55.0,
        5,
        "the write applied",
    )

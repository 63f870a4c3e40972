"""Broker security: username/password over TLS against a Mosquitto that requires both."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from structlog.testing import capture_logs

from hal.mqtt import InsecureTransportError
from runtime import ScanEngine
from runtime.drivers.mqtt import MqttDriverOptions
from runtime.mqtt import MqttBridge, MqttConfig, ProcessBridge, attach_mqtt, load_mqtt_config
from runtime.ops._access import AccessConfig
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import BROKER_USERS, NODE, PREFIX, SITE, BridgeFactory, hmi_client


def _tls(certs: dict[str, Path]) -> dict[str, str]:
    return {"ca_file": str(certs["ca"])}


def test_tls_and_password_from_file(
    make_bridge: BridgeFactory, tls_broker: tuple[Broker, dict[str, Path]], tmp_path: Path
) -> None:
    broker, certs = tls_broker
    secret = tmp_path / "mqtt.pw"
    secret.write_text(BROKER_USERS["vplc"] + "\n")
    bridge = make_bridge(
        port=broker.port, username="vplc", password_file=secret, tls=_tls(certs), host="localhost"
    )
    assert bridge.connected.wait(5), bridge.statistics()

    async def scenario() -> None:
        ctx = ssl.create_default_context(cafile=str(certs["ca"]))
        async with hmi_client(
            broker.port, username="hmi", password=BROKER_USERS["hmi"], tls_context=ctx
        ) as hmi:
            birth = await hmi.wait_for(f"{PREFIX}/birth", lambda b: b["status"] == "online")
            assert birth["app"] == "testapp"

    asyncio.run(scenario())


def test_wrong_password_is_refused_by_the_broker(
    make_bridge: BridgeFactory,
    tls_broker: tuple[Broker, dict[str, Path]],
    engine: ScanEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, certs = tls_broker
    monkeypatch.setenv("VPLC_TEST_MQTT_PW", "not-the-password")
    bridge = make_bridge(
        port=broker.port, username="vplc", password_env="VPLC_TEST_MQTT_PW", tls=_tls(certs)
    )
    time.sleep(1.0)
    stats = bridge.statistics()
    assert not stats["connected"]
    assert "authori" in stats["last_error"].lower() or "password" in stats["last_error"].lower()
    assert engine.tasks[0].stats.cycles > 50  # refused by the broker, still scanning


def test_plaintext_client_cannot_talk_to_tls_listener(
    tls_broker: tuple[Broker, dict[str, Path]],
) -> None:
    broker, _ = tls_broker

    async def scenario() -> None:
        import aiomqtt

        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, username="hmi", password=BROKER_USERS["hmi"], timeout=2
            ):
                pass

    asyncio.run(scenario())


def test_attach_from_yaml_resolves_relative_paths(
    engine: ScanEngine, tls_broker: tuple[Broker, dict[str, Path]], tmp_path: Path
) -> None:
    broker, certs = tls_broker
    (tmp_path / "pw").write_text(BROKER_USERS["vplc"])
    (tmp_path / "ca.crt").write_bytes(certs["ca"].read_bytes())
    cfg_file = tmp_path / "mqtt.yaml"
    cfg_file.write_text(
        yaml.safe_dump(
            {
                "host": "localhost",
                "port": broker.port,
                "site": SITE,
                "node": NODE,
                "username": "vplc",
                "password_file": "pw",
                "tls": {"ca_file": "ca.crt"},
                "audit_file": "audit/audit.jsonl",
            }
        )
    )
    cfg = load_mqtt_config(cfg_file)
    assert cfg.password_file == tmp_path / "pw" and cfg.tls is not None
    bridge = attach_mqtt(engine, cfg_file)
    try:
        assert bridge.connected.wait(5), bridge.statistics()
    finally:
        bridge.stop()


def test_config_rejects_unknown_keys_and_bad_topics() -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        MqttConfig(site="a", node="b", hots="x")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="pattern"):
        MqttConfig(site="a/#", node="b")
    with pytest.raises(ValueError, match="password needs a username"):
        MqttConfig(site="a", node="b", password_env="X")


def test_credentials_over_plain_tcp_are_refused_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="would travel in clear text"):
        MqttConfig(site="a", node="b", username="vplc", password_env="X")
    with pytest.raises(ValueError, match="command tokens"):
        MqttConfig(site="a", node="b", access_file=tmp_path / "access.yaml")
    ok = MqttConfig(site="a", node="b", username="vplc", allow_insecure=True)
    assert ok.insecure_warning() is not None
    tls = MqttConfig(site="a", node="b", username="vplc", tls={"ca_file": tmp_path / "ca.crt"})
    assert tls.insecure_warning() is None
    with pytest.raises(ValueError, match="would travel in clear text"):
        MqttDriverOptions(prefix="p", channels={"t": "in"}, username="io")


def test_commands_with_tokens_need_tls_or_allow_insecure(
    engine: ScanEngine, broker: Broker, access: AccessConfig
) -> None:
    plain = MqttConfig(port=broker.port, site=SITE, node=NODE)
    for bridge_cls in (MqttBridge, ProcessBridge):
        with pytest.raises(InsecureTransportError, match="command tokens"):
            bridge_cls(engine, plain, access=access)  # type: ignore[operator]
    MqttBridge(engine, plain)  # without an access configuration commands are off: fine


def test_allow_insecure_warns_at_every_start(
    engine: ScanEngine, broker: Broker, access: AccessConfig
) -> None:
    cfg = MqttConfig(port=broker.port, site=SITE, node=NODE, allow_insecure=True)
    with capture_logs() as logs:
        for _ in range(2):
            bridge = MqttBridge(engine, cfg, access=access)
            bridge.start()
            assert bridge.connected.wait(5)
            bridge.stop()
    warnings = [e for e in logs if e["event"] == "mqtt_insecure_transport"]
    assert len(warnings) == 2 and "plain TCP" in warnings[0]["warning"]


def test_cli_refuses_a_login_over_plain_tcp_with_exit_2(tmp_path: Path) -> None:
    app = Path(__file__).resolve().parents[2] / "plc_apps" / "bioreactor"
    cfg = tmp_path / "mqtt.yaml"
    cfg.write_text(yaml.safe_dump({"site": "s", "node": "n", "username": "vplc"}))
    vplc = str(Path(sys.executable).with_name("vplc"))
    res = subprocess.run(
        [
            vplc,
            "run",
            str(app),
            "--mqtt",
            str(cfg),
            "--no-view",
            "--duration",
            "1",
            "--retain-file",
            str(tmp_path / "never.retain"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    assert str(cfg) in res.stderr and "clear text" in res.stderr and "allow_insecure" in res.stderr
    assert not (tmp_path / "never.retain").exists()  # refused before anything ran or was kept

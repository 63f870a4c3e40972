"""Broker security: username/password over TLS against a Mosquitto that requires both."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest
import yaml

from runtime import ScanEngine
from runtime.mqtt import MqttConfig, attach_mqtt, load_mqtt_config
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

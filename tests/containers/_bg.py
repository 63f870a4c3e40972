"""Blue-green fixtures: a private Mosquitto on the bridge address, the plant in its own container
(the ``vplc-sim`` image, ``vplc sim serve``), bioreactor images on the mqtt driver, a deployment.

The broker listens only on the host's docker bridge address (containers reach it, nothing
else does); broker and plant restart for every test, so each test's owner epochs start at 1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from containers._bluegreen import MqttCommander
from hal.mqtt import BrokerOptions
from runtime.ops._access import hash_token
from tests.containers._net import bridge_gateway
from tests.containers.conftest import PREFIX, _run, drop_release_tags
from tests.hil.conftest import mqtt_app, wait_until
from tests.hil.test_handover import FAULTY
from tests.mqtt.broker import ensure_mosquitto

__all__ = ["NAME", "PLANT", "TOKEN", "bg_deployment", "bg_images", "net", "plant"]

TOKEN = "bg-deployer-secret"
NAME = f"{PREFIX}-bg"
PLANT = f"vplc/sim/{PREFIX}-bg"
ADDED_PARAMETER = "foam_limit_pct"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), 0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def net(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Where the broker listens (the bridge address, first boot safe) and the plant image."""
    from containers._plant import build_plant_image
    from containers._wheels import build_wheels

    host = bridge_gateway()
    work = tmp_path_factory.mktemp("bg-net")
    wheels = build_wheels(progress=lambda line: None)
    tag = f"{PREFIX}-sim:test"
    build_plant_image(client, tag=tag, wheelhouse=wheels, progress=lambda line: None)
    try:
        yield {"host": host, "port": _free_port(host), "work": work, "wheels": wheels,
               "plant_image": tag}  # fmt: skip
    finally:
        _run(["docker", "rmi", "-f", tag])


def start_broker(host: str, port: int, work: Path) -> subprocess.Popen[bytes]:
    """Mosquitto listening only on ``host:port`` (the bridge address), no persistence."""
    exe, _ = ensure_mosquitto()
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {host}\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    broker = subprocess.Popen([exe, "-c", str(conf)], stderr=(work / "broker.log").open("ab"))
    try:
        wait_until(lambda: _connects(host, port), 10, "broker listening")
    except AssertionError:
        broker.terminate()
        raise
    return broker


def start_plant(client: Any, image: str, *, host: str, port: int, name: str) -> Any:
    """The plant container (`vplc sim serve`), hardened like an app; returns once it publishes."""
    container = client.containers.run(
        image,
        ["--host", host, "--port", str(port), "--prefix", PLANT, "--stats-s", "0.2"],
        name=name, detach=True, read_only=True, cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"], network_mode="bridge",
    )  # fmt: skip
    cmdr = MqttCommander(_plain(host, port), user="erik", token=TOKEN, plant=PLANT)
    try:
        stats = cmdr.stats_after(time.monotonic(), timeout=30)
    finally:
        cmdr.close()
    assert stats is not None, container.logs().decode()[-2000:]
    return container


@pytest.fixture
def plant(client: Any, net: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A fresh broker and the plant container (`vplc sim serve`) publishing its write log."""
    host, port = net["host"], net["port"]
    broker = start_broker(host, port, net["work"])
    name = f"{PREFIX}-plant"
    try:
        container = start_plant(client, net["plant_image"], host=host, port=port, name=name)
        yield {"host": host, "port": port, "container": container}
    finally:
        _run(["docker", "rm", "-f", name])
        broker.terminate()
        broker.wait(10)


def _version_110(src: Path) -> None:
    """1.1.0: TIC101's gain 20 → 25, an added parameter, alarms.ph_rate no longer a variable."""
    manifest = yaml.safe_load((src / "app.yaml").read_text())
    manifest["version"] = "1.1.0"
    manifest["parameters"].append(
        {"name": ADDED_PARAMETER, "type": "REAL", "default": 80.0, "min": 0.0, "max": 100.0}
    )
    (src / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    loops = (src / "loops.py").read_text()
    assert "KC=20.0, TI=3000.0" in loops
    (src / "loops.py").write_text(loops.replace("KC=20.0, TI=3000.0", "KC=25.0, TI=3000.0"))
    alarms = (src / "alarms.py").read_text()
    old_vars = 'VARS = {"ph_prev": 7.0, "ph_rate": 0.0}'
    assert old_vars in alarms
    alarms = alarms.replace(old_vars, 'VARS = {"ph_prev": 7.0}')
    init = "        super().__init__(app, prefix=pre)\n"
    assert init in alarms
    alarms = alarms.replace(
        init, init + "        self.ph_rate = 0.0  # no longer retained state\n", 1
    )
    (src / "alarms.py").write_text(alarms)


def build_bg_images(
    client: Any,
    work: Path,
    *,
    host: str,
    port: int,
    wheels: Path,
    variants: dict[str, str],
    tags: dict[str, str],
) -> None:
    """Build ``variants`` (key → tag) into ``tags`` (filled as they are built, for cleanup).

    Keys: v1/v101 (1.0.0), broken (FAULTY), v110 (1.1.0), or epoch2 (1.0.0 claiming owner
    epoch 2: a stop-and-restart successor on the plant)."""
    from containers._image import build_image

    for key, tag in variants.items():
        src = mqtt_app(work / key, port=port, prefix=PLANT, params={})
        manifest = yaml.safe_load((src / "app.yaml").read_text())
        manifest["drivers"]["plant"]["options"] |= {
            "host": host, "owner_epoch": 2 if key == "epoch2" else 1, "publish_ms": 5,
        }  # fmt: skip
        (src / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        if key == "broken":
            with (src / "loops.py").open("a") as f:
                f.write(FAULTY)
        if key == "v110":
            _version_110(src)
        built = build_image(
            client, src, tag=f"{PREFIX}-bgreactor:{tag}", wheelhouse=wheels,
            progress=lambda line: None,
        )  # fmt: skip
        tags[key] = built.tag


@pytest.fixture(scope="module")
def bg_images(client: Any, net: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The bioreactor on the mqtt driver: 1.0.0, the same version rebuilt (tag 1.0.1), a build
    that faults in its third cycle after the claim, and 1.1.0 (a real version change)."""
    variants = {"v1": "1.0.0", "v101": "1.0.1", "broken": "1.0.0-broken", "v110": "1.1.0"}
    tags: dict[str, str] = {}
    try:
        build_bg_images(
            client, net["work"], host=net["host"], port=net["port"], wheels=net["wheels"],
            variants=variants, tags=tags,
        )  # fmt: skip
        yield tags
    finally:
        for tag in tags.values():
            _run(["docker", "rmi", "-f", tag])
        _run(["docker", "image", "prune", "-f", "--filter", "label=org.vplc.stage=install"])


def _plain(host: str, port: int) -> BrokerOptions:
    """The test broker: plain TCP, so tokens need allow_insecure."""
    return BrokerOptions(host=host, port=port, allow_insecure=True)


def write_bg_deployment(folder: Path, *, host: str, port: int, **fields: Any) -> Path:
    """A blue-green deployment file (and its config folder: bridge config, access file)."""
    config = folder / "config"
    config.mkdir()
    access = {"users": {"erik": {"role": "engineer", "token_sha256": hash_token(TOKEN)}}}
    (config / "access.yaml").write_text(yaml.safe_dump(access))
    bridge = {
        "host": host, "port": port, "site": "s1", "node": "line1",
        "access_file": "access.yaml", "audit_file": "mqtt-audit.jsonl", "stats_s": 1.0,
        "max_command_bytes": 512 * 1024, "allow_insecure": True,  # plain test broker
    }  # fmt: skip
    (config / "mqtt.yaml").write_text(yaml.safe_dump(bridge))
    config.chmod(0o755)
    for f in config.iterdir():
        f.chmod(0o644)
    path = folder / "bg.yaml"
    doc = {
        "name": NAME, "image": "set-by-the-test", "strategy": "blue-green",
        "config_dir": "config", "health_timeout_s": 60, "restart": "no", "probation_s": 4,
        "blue_green": {"plant": PLANT, "user": "erik"}, **fields,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def bg_deployment(
    client: Any, plant: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    monkeypatch.setenv("VPLC_HANDOVER_TOKEN", TOKEN)
    path = write_bg_deployment(tmp_path, host=plant["host"], port=plant["port"])
    yield path
    for suffix in ("", "-blue", "-green", "-previous"):
        _run(["docker", "rm", "-f", f"vplc-{NAME}{suffix}"])
    for color in ("blue", "green"):
        _run(["docker", "volume", "rm", "-f", f"vplc-{NAME}-state-{color}"])
    drop_release_tags(NAME)

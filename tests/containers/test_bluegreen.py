"""`vplc update` with `strategy: blue-green` against the real engine: two app containers, the plant
(`vplc sim serve`) and a private Mosquitto on the host, reached over the docker bridge gateway.

The snapshot crosses only between instances of the same app version (runtime/state/snapshot.py
refuses another one), so "1.0.1" is a new image of the same app version under another tag.
"""

from __future__ import annotations

import json
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
from runtime._access import hash_token
from tests.containers._net import bridge_gateway
from tests.containers.conftest import PREFIX, _run
from tests.hil.conftest import VPLC, mqtt_app, wait_until
from tests.hil.test_handover import FAULTY
from tests.mqtt.broker import ensure_mosquitto

TOKEN = "bg-deployer-secret"
NAME = f"{PREFIX}-bg"
PLANT = f"vplc/sim/{PREFIX}-bg"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def net(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Mosquitto on the bridge gateway (only this machine's docker bridge) and the plant."""
    exe, _ = ensure_mosquitto()
    host = bridge_gateway()
    port = _free_port(host)
    work = tmp_path_factory.mktemp("bg-net")
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {host}\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    broker = subprocess.Popen([exe, "-c", str(conf)], stderr=(work / "broker.log").open("wb"))
    plant = None
    try:
        wait_until(lambda: _connects(host, port), 10, "broker listening")
        cmd = [VPLC, "sim", "serve", "--host", host, "--port", str(port), "--prefix", PLANT,
               "--stats-s", "0.2"]  # fmt: skip
        log = (work / "plant.log").open("wb")
        plant = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        yield {"host": host, "port": port, "work": work}
    finally:
        for proc in (plant, broker):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def _connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), 0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def bg_images(client: Any, net: dict[str, Any]) -> Iterator[dict[str, str]]:
    """The bioreactor on the mqtt driver (broker on the gateway): v1, the same as 1.0.1, broken."""
    from containers._image import build_image, build_wheels

    work: Path = net["work"]
    wheels = build_wheels(progress=lambda line: None)
    tags: dict[str, str] = {}
    try:
        for key, tag, faulty in (
            ("v1", "1.0.0", False),
            ("v101", "1.0.1", False),
            ("broken", "1.0.0-broken", True),
        ):
            src = mqtt_app(work / key, port=net["port"], prefix=PLANT, params={})
            manifest = yaml.safe_load((src / "app.yaml").read_text())
            manifest["drivers"]["plant"]["options"] |= {
                "host": net["host"], "owner_epoch": 1, "publish_ms": 5,
            }  # fmt: skip
            (src / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
            if faulty:
                with (src / "loops.py").open("a") as f:
                    f.write(FAULTY)
            built = build_image(
                client, src, tag=f"{PREFIX}-bgreactor:{tag}", wheelhouse=wheels,
                progress=lambda line: None,
            )  # fmt: skip
            tags[key] = built.tag
        yield tags
    finally:
        for tag in tags.values():
            _run(["docker", "rmi", "-f", tag])
        _run(["docker", "image", "prune", "-f", "--filter", "label=org.vplc.stage=install"])


@pytest.fixture
def bg_deployment(
    client: Any, net: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    config = tmp_path / "config"
    config.mkdir()
    access = {"users": {"erik": {"role": "engineer", "token_sha256": hash_token(TOKEN)}}}
    (config / "access.yaml").write_text(yaml.safe_dump(access))
    bridge = {
        "host": net["host"], "port": net["port"], "site": "s1", "node": "line1",
        "access_file": "access.yaml", "audit_file": "mqtt-audit.jsonl", "stats_s": 1.0,
        "max_command_bytes": 512 * 1024,
    }  # fmt: skip
    (config / "mqtt.yaml").write_text(yaml.safe_dump(bridge))
    config.chmod(0o755)
    for f in config.iterdir():
        f.chmod(0o644)
    monkeypatch.setenv("VPLC_HANDOVER_TOKEN", TOKEN)
    path = tmp_path / "bg.yaml"
    doc = {
        "name": NAME, "image": "set-by-the-test", "strategy": "blue-green",
        "config_dir": "config", "health_timeout_s": 60, "restart": "no",
        "blue_green": {"plant": PLANT, "user": "erik"},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    yield path
    for suffix in ("", "-blue", "-green", "-previous"):
        _run(["docker", "rm", "-f", f"vplc-{NAME}{suffix}"])
    for color in ("blue", "green"):
        _run(["docker", "volume", "rm", "-f", f"vplc-{NAME}-state-{color}"])


def _exists(client: Any, name: str) -> bool:
    import docker.errors

    try:
        client.containers.get(name)
        return True
    except docker.errors.NotFound:
        return False


def test_blue_green_update_and_rollback(
    client: Any,
    net: dict[str, Any],
    bg_images: dict[str, str],
    bg_deployment: Path,
    manager: Any,
) -> None:
    from containers import _bluegreen_deploy
    from containers._errors import DeployError
    from containers._rollout import update

    doc = yaml.safe_load(bg_deployment.read_text())
    bg_deployment.write_text(yaml.safe_dump(doc | {"image": bg_images["v1"]}))
    deployed = _bluegreen_deploy.deploy(manager, bg_deployment)
    assert deployed["color"] == "blue"
    cmdr = MqttCommander(host=net["host"], port=net["port"], user="erik", token=TOKEN, plant=PLANT)
    try:
        time.sleep(3.0)  # blue drives the plant: PIDs integrate, the batch phase moves on
        result = update(manager, NAME, bg_images["v101"])
        print("blue-green update:", json.dumps(result))
        hand = result["handover"]
        assert hand["outcome"] == "ok", result
        assert (hand["from_epoch"], hand["epoch"]) == (1, 2)
        assert result["output_gap_cycles"] is not None, result
        # Back to back: the plant's first write of epoch 2 one period after the last of epoch 1
        # (1.0 measured; < 1.5 tolerates the plant's step jitter, a missed scan would be ≥ 2).
        assert result["output_gap_cycles"] < 1.5, result
        assert hand["skipped_releases"] == 0, result
        assert [e for e, _ in hand["epoch_runs"]] == [1, 2], "two writers interleaved"
        assert hand["old_mode"] == "superseded"
        # The old container and its volume are gone; the green one carries the name.
        assert not _exists(client, f"vplc-{NAME}-blue")
        active = client.containers.get(f"vplc-{NAME}")
        assert active.labels["org.vplc.color"] == "green"
        assert active.labels["org.vplc.image"] == bg_images["v101"]
        assert not [v for v in client.volumes.list() if v.name == f"vplc-{NAME}-state-blue"]
        # State crossed exactly: green's programs after the restore equal blue's snapshot.
        out = active.exec_run(["cat", "/var/lib/vplc/mqtt-audit.jsonl"], user="10001").output
        audit = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
        claim = next(r for r in audit if r.get("cmd") == "handover_claim")
        assert claim["status"] == "accepted"
        assert claim["new"]["programs_sha256"] == claim["new"]["snapshot_programs_sha256"]
        green = "vplc/s1/line1-green/bioreactor"
        st = cmdr.command(green, "handover_status")["new"]
        assert st["mode"] == "active" and st["state"] == "RUN" and st["epoch"] == 2
        stats = cmdr.stats_after(time.monotonic())
        assert stats is not None and stats["writes"]["refused_stale_epoch"] == 0
        assert stats["owner_epoch"] == 2 and stats["actuators"]["agitator"] > 0
        rec = manager.audit.records()[-1]
        assert rec["outcome"] == "ok" and rec["strategy"] == "blue-green"
        assert rec["handover"]["epoch"] == 2 and rec["output_gap_cycles"] is not None

        # A broken new build (raises in its third cycle after the claim): green takes over again.
        with pytest.raises(DeployError, match="Rolled back automatically"):
            update(manager, NAME, bg_images["broken"])
        assert not _exists(client, f"vplc-{NAME}-blue")
        rec = manager.audit.records()[-1]
        assert rec["outcome"] == "rolled-back" and rec["automatic"] is True, rec
        assert "probation" in rec["reason"]
        resumed = rec["handover"]["resume"]["epoch"]
        st = cmdr.command(green, "handover_status")["new"]
        assert st["mode"] == "active" and st["state"] == "RUN" and st["epoch"] == resumed
        time.sleep(0.5)
        stats = cmdr.stats_after(time.monotonic())
        assert stats is not None and stats["owner_epoch"] == resumed
        assert stats["actuators"]["agitator"] > 0  # the broken one's safe values never landed
        assert manager.store.get(NAME)["image"] == bg_images["v101"]
        assert manager.audit.verify()
    finally:
        cmdr.close()
    _bluegreen_deploy.remove(manager, NAME, purge=True)
    assert not _exists(client, f"vplc-{NAME}")
    assert not [v for v in client.volumes.list() if v.name.startswith(f"vplc-{NAME}-state")]


def test_blue_green_needs_a_config_dir(tmp_path: Path) -> None:
    from containers._errors import InvalidInputError
    from containers._spec import load_deployment

    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "image": "i", "strategy": "blue-green"}))
    with pytest.raises(InvalidInputError, match="config_dir"):
        load_deployment(path)
    path.write_text(yaml.safe_dump({"name": "x", "image": "i"}))
    assert load_deployment(path).strategy.value == "recreate"

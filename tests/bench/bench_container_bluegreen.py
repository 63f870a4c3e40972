"""Output gap of container updates on the plant's own write log: blue-green next to recreate.

Everything in containers on the real engine: the plant (``vplc-sim`` image, ``vplc sim
serve``), the bioreactor on the mqtt driver, a private Mosquitto on the bridge address. The
gap is the plant's last applied write of the old owner epoch → its first of the new one, in
cycles of the 200 ms control task. ``blue_green``: same app version (a rebuilt image);
``blue_green_version_change``: 1.0.0 → 1.1.0 (changed gain, added parameter, removed variable),
which reports the refusal until the cross-version state merge lands; ``recreate``:
stop-and-restart of the same app on the same plant (the successor claims epoch 2).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CONTROL_PERIOD_S = 0.2


def run() -> dict[str, Any]:
    from containers._client import connect
    from containers._errors import ContainersError
    from containers._plant import build_plant_image
    from containers._wheels import build_wheels
    from tests.containers._bg import NAME, TOKEN, _free_port, build_bg_images
    from tests.containers._net import bridge_gateway
    from tests.containers.conftest import PREFIX

    try:
        client = connect()
    except ContainersError as exc:
        return {"skipped": str(exc)}

    os.environ["VPLC_HANDOVER_TOKEN"] = TOKEN
    work = Path(tempfile.mkdtemp(prefix="vplc-bench-cbg-"))
    host = bridge_gateway()
    port = _free_port(host)
    quiet = lambda line: None  # noqa: E731
    wheels = build_wheels(progress=quiet)
    plant_tag = f"{PREFIX}-sim:bench"
    tags: dict[str, str] = {}
    variants = {"v1": "1.0.0", "v101": "1.0.1", "v110": "1.1.0", "epoch2": "1.0.0-epoch2"}
    try:
        build_plant_image(client, tag=plant_tag, wheelhouse=wheels, progress=quiet)
        build_bg_images(client, work, host=host, port=port, wheels=wheels, variants=variants,
                        tags=tags)  # fmt: skip
        result: dict[str, Any] = {"probation_s": 4}
        env = {"client": client, "host": host, "port": port, "plant": plant_tag, "work": work}
        result |= _on_fresh_plant(env, "bg", lambda e: _blue_green(e, tags))
        result["recreate"] = _on_fresh_plant(env, "sr", lambda e: _recreate(e, tags))
        result["gap_cycles"] = {
            "blue_green": result["blue_green"].get("output_gap_cycles"),
            "recreate": result["recreate"].get("plant_gap_cycles"),
        }
        return result
    finally:
        for suffix in ("", "-blue", "-green", "-previous"):
            subprocess.run(["docker", "rm", "-f", f"vplc-{NAME}{suffix}"], capture_output=True)
        for t in [*tags.values(), plant_tag]:
            subprocess.run(["docker", "rmi", "-f", t], capture_output=True)
        prune = ["docker", "image", "prune", "-f", "--filter", "label=org.vplc.stage=install"]
        subprocess.run(prune, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _on_fresh_plant(env: dict[str, Any], label: str, body: Any) -> Any:
    """A fresh broker and plant container (owner epochs start at 1) around ``body``."""
    from tests.containers._bg import start_broker, start_plant
    from tests.containers.conftest import PREFIX

    folder = env["work"] / label
    folder.mkdir()
    broker = start_broker(env["host"], env["port"], folder)
    name = f"{PREFIX}-plant-{label}"
    try:
        start_plant(env["client"], env["plant"], host=env["host"], port=env["port"], name=name)
        return body(env | {"folder": folder})
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        broker.terminate()
        broker.wait(10)


def _manager(env: dict[str, Any]) -> Any:
    from containers._manager import DeploymentManager

    folder: Path = env["folder"]
    return DeploymentManager(
        env["client"], state_dir=folder / "state", user="bench", progress=lambda x: None
    )


def _blue_green(env: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    from containers import _bluegreen_deploy
    from containers._errors import ContainersError, DeployError
    from containers._rollout import update
    from tests.containers._bg import NAME, write_bg_deployment

    mgr = _manager(env)
    path = write_bg_deployment(env["folder"], host=env["host"], port=env["port"], image=tags["v1"])
    out: dict[str, Any] = {}
    try:
        _bluegreen_deploy.deploy(mgr, path)
        time.sleep(3.0)
        t0 = time.perf_counter()
        same = update(mgr, NAME, tags["v101"])
        out["blue_green"] = _gaps(same) | {"update_s": round(time.perf_counter() - t0, 2)}
        time.sleep(2.0)
        t0 = time.perf_counter()
        try:
            changed = update(mgr, NAME, tags["v110"])
            out["blue_green_version_change"] = _gaps(changed) | {
                "update_s": round(time.perf_counter() - t0, 2)
            }
        except DeployError as exc:
            out["blue_green_version_change"] = {"refused": str(exc).splitlines()[0][:300]}
        return out
    finally:
        with contextlib.suppress(ContainersError):
            _bluegreen_deploy.remove(mgr, NAME, purge=True)


def _gaps(result: dict[str, Any]) -> dict[str, Any]:
    hand = result["handover"]
    return {
        "output_gap_cycles": result["output_gap_cycles"],
        "output_gap_s": result["output_gap_s"],
        "runtime_gap_cycles": result["runtime_gap_cycles"],
        "skipped_releases": hand.get("skipped_releases"),
        "epoch_runs": hand.get("epoch_runs"),
        "standby_ready_s": result["healthy_after_s"],
    }


def _recreate(env: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """Stop-and-restart on the same plant: the plant sees epoch 1 end and epoch 2 begin."""
    import yaml

    from containers._bluegreen import MqttCommander, plant_gap
    from containers._rollout import update
    from hal.mqtt import BrokerOptions
    from tests.containers._bg import PLANT, TOKEN
    from tests.containers.conftest import drop_release_tags

    mgr = _manager(env)
    name = f"{PLANT.rsplit('/', 1)[-1]}-sr"
    path = env["folder"] / "sr.yaml"
    doc = {"name": name, "image": tags["v1"], "restart": "no", "probation_s": 4}
    path.write_text(yaml.safe_dump(doc))
    broker = BrokerOptions(host=env["host"], port=env["port"], allow_insecure=True)  # test broker
    cmdr = MqttCommander(broker, user="erik", token=TOKEN, plant=PLANT)
    try:
        mgr.deploy(path)
        time.sleep(3.0)
        t0 = time.perf_counter()
        up = update(mgr, name, tags["epoch2"])
        took = round(time.perf_counter() - t0, 2)
        time.sleep(0.5)
        gap = plant_gap(cmdr, 1, 2, CONTROL_PERIOD_S)
        return gap | {"runtime_gap_cycles": up["output_gap_cycles"], "update_s": took}
    finally:
        cmdr.close()
        subprocess.run(["docker", "rm", "-f", f"vplc-{name}", f"vplc-{name}-previous"],
                       capture_output=True)  # fmt: skip
        subprocess.run(["docker", "volume", "rm", "-f", f"vplc-{name}-state"], capture_output=True)
        drop_release_tags(name)


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

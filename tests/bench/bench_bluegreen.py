"""Output gap of a blue-green handover vs a stop-and-restart update, same plant, same run.

Both run the bioreactor as `vplc run` processes against `vplc sim serve` over a private
Mosquitto (no Docker). The gap is given two ways: on the runtime side (the old instance's last
controlled cycle → the new one's first, from the handover marks or the heartbeat files) and on
the plant side (the last applied write of the old epoch → the first of the new one).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.mqtt.broker import Broker, ensure_mosquitto, plain_broker

CONTROL_PERIOD_S = 0.2  # the bioreactor's fastest task


def run() -> dict[str, Any]:
    exe, _ = ensure_mosquitto()
    with tempfile.TemporaryDirectory(prefix="vplc-bench-bg-") as folder:
        tmp = Path(folder)
        broker = plain_broker(exe, tmp / "mosquitto")
        broker.start()
        try:
            result = {
                "blue_green": _scenario(broker, tmp / "bg", blue_green=True),
                # 1.0.0 → 1.1.0: a changed gain, an added parameter, a removed variable, the
                # snapshot merged by the standby (issue 12)
                "blue_green_version_change": _scenario(
                    broker, tmp / "bgv", blue_green=True, versions=True
                ),
                "stop_restart": _scenario(broker, tmp / "sr", blue_green=False),
            }
        finally:
            broker.stop()
    bg, sr = result["blue_green"], result["stop_restart"]
    bgv = result["blue_green_version_change"]
    result["gap_cycles"] = {
        "blue_green": bg.get("runtime_gap_cycles"),
        "blue_green_version_change": bgv.get("runtime_gap_cycles"),
        "stop_restart": sr.get("runtime_gap_cycles"),
    }
    result["plant_gap_cycles"] = {
        "blue_green": bg.get("plant_gap_cycles"),
        "blue_green_version_change": bgv.get("plant_gap_cycles"),
        "stop_restart": sr.get("plant_gap_cycles"),
    }
    return result


def _scenario(
    broker: Broker, tmp: Path, *, blue_green: bool, versions: bool = False
) -> dict[str, Any]:
    from containers._bluegreen import MqttCommander, blue_green_handover, plant_gap
    from hal.mqtt import BrokerOptions
    from tests.hil.conftest import ServeProcess, Watcher, wait_until
    from tests.hil.test_handover import TOKEN, Instance, build_app, make_version

    tmp.mkdir(parents=True)
    plant = f"vplc/sim/bench-{tmp.name}"
    watch = Watcher(broker.port, plant)
    server = ServeProcess(broker, plant, ["--stats-s", "0.2"], tmp / "serve.log")
    cmdr = MqttCommander(
        BrokerOptions(port=broker.port, allow_insecure=True), user="erik", token=TOKEN, plant=plant
    )
    made: list[Instance] = []

    def start(node: str, app: Path, *extra: str) -> Instance:
        inst = Instance(tmp, broker.port, node, app, *extra)
        made.append(inst)
        up = lambda: cmdr.command(inst.prefix, "handover_status", 0.5)["status"] == "accepted"  # noqa: E731
        wait_until(up, 30, f"{node} answering")
        return inst

    try:
        wait_until(lambda: (watch.last("status") or {}).get("status") == "online", 15)
        v1 = build_app(tmp, broker.port, plant, "v1", epoch=1)
        if blue_green:
            green_app = v1
            if versions:
                make_version(v1, "1.0.0", kc=20.0, extra_param=False, legacy_var=True)
                green_app = build_app(tmp, broker.port, plant, "v110", epoch=1)
                make_version(green_app, "1.1.0", kc=25.0, extra_param=True, legacy_var=False)
            blue = start("blue", v1)
            start("green", green_app, "--standby")
            time.sleep(3.0)
            return blue_green_handover(cmdr, old=blue.prefix, new="vplc/s1/green/bioreactor")
        blue = start("blue", v1, "--heartbeat", str(tmp / "hb-old.json"))
        time.sleep(3.0)
        blue.stop()  # SIGTERM: outputs safe, final heartbeat record with the last cycle
        v2 = build_app(tmp, broker.port, plant, "v2", epoch=2)
        start("blue", v2, "--heartbeat", str(tmp / "hb-new.json"))
        new_beat = tmp / "hb-new.json"
        wait_until(lambda: new_beat.exists() and _beat(new_beat)["first_cycle_at"], 10, "beat")
        gap_s = _beat(new_beat)["first_cycle_at"] - _beat(tmp / "hb-old.json")["last_cycle_at"]
        report: dict[str, Any] = {"strategy": "stop-restart", "runtime_gap_s": round(gap_s, 4)}
        report["runtime_gap_cycles"] = round(gap_s / CONTROL_PERIOD_S, 2)
        time.sleep(0.5)
        # On the plant side the old epoch's last write is its safe values (SIGTERM).
        return report | plant_gap(cmdr, 1, 2, CONTROL_PERIOD_S)
    finally:
        for inst in made:
            inst.stop()
        cmdr.close()
        watch.close()
        server.stop()


def _beat(path: Path) -> dict[str, Any]:
    for _ in range(20):
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except (OSError, ValueError):
            time.sleep(0.05)  # replaced atomically, but may not exist yet
    raise RuntimeError(f"{path}: no heartbeat")

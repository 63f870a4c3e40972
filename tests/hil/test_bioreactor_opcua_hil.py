"""The bioreactor bound with the `opcua` driver against `vplc sim serve --protocol opcua`.

Real time, real TCP, SignAndEncrypt (Basic256Sha256), two processes: the plant steps at 10 Hz
in its own process and serves its signals as OPC UA variables; the app subscribes to the
sensors (sampled at its fastest task's period) and writes the actuators on change. The
control task (200 ms) must hold T 37 ± 0.2, pH 7 ± 0.05 and DO 40 ± 5 with no BAD input;
then the plant dies and the inputs turn BAD within the driver's staleness time.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from hal import Quality
from runtime import load_app
from runtime.host import Runtime
from sim_hardware._opcua_serve import plant_nodes
from tests.hil.conftest import ROOT, VPLC, wait_until
from tests.hil.test_bioreactor_modbus_hil import BANDS, INITIAL
from tests.mqtt.broker import free_port

WINDOW_S = 30.0  # real seconds of band checking
TIMEOUT_S, KEEPALIVE = 0.5, 3


def opcua_app(tmp_path: Path, port: int, params: dict[str, Any]) -> Path:
    """plc_apps/bioreactor copied with its driver turned into `type: opcua` (the binding an
    integrator writes for this plant: one channel per point, NodeIds in the nsu= form)."""
    app_dir = tmp_path / "bioreactor"
    shutil.copytree(ROOT / "plc_apps" / "bioreactor", app_dir)
    manifest = yaml.safe_load((app_dir / "app.yaml").read_text(encoding="utf-8"))
    nodes = plant_nodes("bioreactor")
    manifest["drivers"] = {
        "plant": {
            "type": "opcua",
            "options": {
                "endpoint": f"opc.tcp://127.0.0.1:{port}/vplc-sim",
                "security_policy": "Basic256Sha256",
                "timeout_s": TIMEOUT_S, "keepalive_count": KEEPALIVE, "open_wait_s": 10.0,
                "channels": {p["channel"]: nodes[p["channel"]] for p in manifest["points"]},
            },
        }
    }  # fmt: skip
    for point in manifest["points"]:
        point["driver"] = "plant"
    for param in manifest["parameters"]:
        if param["name"] in params:
            param["default"] = params[param["name"]]
    (app_dir / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return app_dir


def start_plant(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    params = tmp_path / "plant.json"
    params.write_text(json.dumps({"time_scale": 1.0}))
    initial = [a for k, v in INITIAL.items() for a in ("--initial", f"{k}={v}")]
    log = tmp_path / "serve.log"
    cmd = [VPLC, "sim", "serve", "--protocol", "opcua", "--port", str(port), "--seed", "42",
           "--params", str(params), *initial]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(log.read_text(errors="replace"))
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    wait_until(up, 30, "sim serve listening")
    return proc, port, log


@pytest.mark.slow
def test_app_holds_its_bands_over_opcua_then_sees_the_plant_vanish(tmp_path: Path) -> None:
    proc, port, log = start_plant(tmp_path)
    try:
        app = load_app(opcua_app(tmp_path, port, {"fill_target_l": 60.0, "heat_settle_s": 1.0}))
        image, batch = app.image, app.programs["batch"]
        seen: dict[str, list[float]] = {name: [] for name in BANDS}
        bad_cycles: list[tuple[float, str]] = []

        def record(task: Any, now_ns: int) -> None:
            for p in image.points:
                if p.quality is Quality.BAD:
                    bad_cycles.append((now_ns / 1e9, p.name))
            for name in BANDS:
                seen[name].append(image[name].value)

        runtime = Runtime(app, hooks=[record])
        runtime.start(thread=True)
        driver = app.drivers["plant"]
        try:
            wait_until(lambda: getattr(batch, "step", "") == "GROW", 15, "batch in GROW")
            bad_cycles.clear()
            for values in seen.values():
                values.clear()
            time.sleep(WINDOW_S)
            assert not bad_cycles, f"inputs BAD while the plant was up: {bad_cycles[:5]}"
            for name, (sp, band) in BANDS.items():
                values = list(seen[name])
                assert len(values) >= 0.9 * WINDOW_S * 5, f"{name}: only {len(values)} cycles"
                worst = max(abs(v - sp) for v in values)
                print(f"HIL opcua {name}: {len(values)} cycles, worst |dev| {worst:.3f} (±{band})")
                assert worst <= band, f"{name}: off {sp} by {worst:.3f} (band ±{band})"
            assert batch.step == "GROW"  # type: ignore[attr-defined]
            stats = runtime.engine.statistics()["tasks"]["control"]
            assert stats["overruns"] == 0, stats
            assert driver.period_ms == 200.0  # type: ignore[attr-defined]  # the control task's
            dstats = driver.statistics()  # type: ignore[attr-defined]
            assert dstats["connects"] == 1 and dstats["writes"] > 0, dstats
            print(f"HIL opcua driver: {dstats}")

            proc.kill()  # the plant process dies: no answer, then no connection
            proc.wait(5)
            do = image["AT301"]
            took = wait_until(lambda: do.quality is Quality.BAD, 10, "DO BAD")
            stale_s = driver.options.stale_s(driver.period_ms)  # type: ignore[attr-defined]
            print(f"HIL opcua: DO BAD {took:.3f} s after the plant died (staleness {stale_s} s)")
            assert took <= stale_s + 0.2 + 0.1, took  # + a control period
            inputs = [p for p in image.points if p.direction.value == "in"]
            wait_until(lambda: all(p.quality is Quality.BAD for p in inputs), 1.0, "all BAD")
        finally:
            runtime.stop_thread(5)
            runtime.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        print(log.read_text(errors="replace")[:400])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--protocol", "opcua", "--prefix", "x/y"], "--prefix: MQTT options"),
        (["--protocol", "opcua", "--actuator-timeout", "2"], "--actuator-timeout: not offered"),
        (["--protocol", "opcua", "--port", "0"], "--port 0: expected 1..65535"),
        (["--security-policy", "None"], "--security-policy: only with --protocol opcua"),
        (["--protocol", "modbus", "--security-policy", "None"], "only with --protocol opcua"),
    ],
)
def test_sim_serve_opcua_refuses_bad_flags(args: list[str], expected: str) -> None:
    out = subprocess.run([VPLC, "sim", "serve", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert expected in out.stderr, out.stderr

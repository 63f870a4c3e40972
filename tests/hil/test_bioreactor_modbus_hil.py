"""The bioreactor bound with the `modbus` driver against `vplc sim serve --protocol modbus`.

Real time, real TCP, two processes: the plant steps at 10 Hz in its own process and is read
and written over Modbus; the app's control task (200 ms) must hold T 37 ± 0.2, pH 7 ± 0.05 and
DO 40 ± 5 with no BAD input; then the plant dies and the inputs turn BAD within one poll
period plus the timeout.
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
from sim_hardware._modbus_serve import plant_map
from tests.drivers.modbus_device import free_port
from tests.hil.conftest import ROOT, VPLC, wait_until

WINDOW_S = 30.0  # real seconds of band checking
POLL_MS, TIMEOUT_S = 100.0, 0.3
INITIAL = {
    "temperature": 37.0, "jacket_temperature": 37.0, "ph": 7.0, "do": 40.0, "volume": 70.0,
    "agitator_speed": 150.0,
}  # fmt: skip
BANDS = {"TT101": (37.0, 0.2), "AT201": (7.00, 0.05), "AT301": (40.0, 5.0)}


def modbus_app(tmp_path: Path, port: int, params: dict[str, Any]) -> Path:
    """plc_apps/bioreactor copied with its driver turned into `type: modbus`."""
    app_dir = tmp_path / "bioreactor"
    shutil.copytree(ROOT / "plc_apps" / "bioreactor", app_dir)
    manifest = yaml.safe_load((app_dir / "app.yaml").read_text(encoding="utf-8"))
    where = plant_map("bioreactor")
    manifest["drivers"] = {
        "plant": {
            "type": "modbus",
            "options": {
                "host": "127.0.0.1", "port": port, "poll_ms": POLL_MS, "timeout_s": TIMEOUT_S,
                "retries": 0, "open_wait_s": 5.0,
                "channels": {p["channel"]: where[p["channel"]] for p in manifest["points"]},
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
    cmd = [VPLC, "sim", "serve", "--protocol", "modbus", "--port", str(port), "--seed", "42",
           "--params", str(params), *initial]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(log.read_text(errors="replace"))
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    wait_until(up, 15, "sim serve listening")
    return proc, port, log


@pytest.mark.slow
def test_app_holds_its_bands_over_modbus_then_sees_the_plant_vanish(tmp_path: Path) -> None:
    proc, port, log = start_plant(tmp_path)
    try:
        app = load_app(modbus_app(tmp_path, port, {"fill_target_l": 60.0, "heat_settle_s": 1.0}))
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
        try:
            wait_until(lambda: getattr(batch, "step", "") == "GROW", 10, "batch in GROW")
            bad_cycles.clear()
            for values in seen.values():
                values.clear()
            time.sleep(WINDOW_S)
            assert not bad_cycles, f"inputs BAD while the plant was up: {bad_cycles[:5]}"
            for name, (sp, band) in BANDS.items():
                values = list(seen[name])
                assert len(values) >= 0.9 * WINDOW_S * 5, f"{name}: only {len(values)} cycles"
                worst = max(abs(v - sp) for v in values)
                print(f"HIL modbus {name}: {len(values)} cycles, worst |dev| {worst:.3f} (±{band})")
                assert worst <= band, f"{name}: off {sp} by {worst:.3f} (band ±{band})"
            assert batch.step == "GROW"  # type: ignore[attr-defined]
            stats = runtime.engine.statistics()["tasks"]["control"]
            assert stats["overruns"] == 0, stats

            proc.kill()  # the plant process dies: no answer, then no connection
            proc.wait(5)
            do = image["AT301"]
            took = wait_until(lambda: do.quality is Quality.BAD, 5, "DO BAD")
            print(f"HIL modbus: DO BAD {took:.3f} s after the plant died")
            assert took <= POLL_MS / 1e3 + TIMEOUT_S + 0.2 + 0.1, took  # + a control period
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

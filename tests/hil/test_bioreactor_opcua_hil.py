"""The bioreactor bound with the `opcua` driver against `vplc sim serve --protocol opcua`.

Real time, real TCP, SignAndEncrypt (Basic256Sha256), two processes: the plant steps at 10 Hz
in its own process and serves its signals as OPC UA variables; the app subscribes to the
sensors (sampled at its fastest task's period) and writes the actuators on change. The
control task (200 ms) must hold T 37 ± 0.2, pH 7 ± 0.05 and DO 40 ± 5 with no BAD input;
then the plant dies and the inputs turn BAD within the driver's staleness time.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from runtime import load_app
from sim_hardware._opcua_serve import plant_nodes
from tests.hil._bands import PARAMS, band_run, plant
from tests.hil.conftest import VPLC, bioreactor_points, bound_app

TIMEOUT_S, KEEPALIVE = 0.5, 3


def opcua_app(tmp_path: Path, port: int, params: dict[str, Any]) -> Path:
    """plc_apps/bioreactor copied with its driver turned into `type: opcua` (the binding an
    integrator writes for this plant: one channel per point, NodeIds in the nsu= form)."""
    nodes = plant_nodes("bioreactor")
    options = {
        "endpoint": f"opc.tcp://127.0.0.1:{port}/vplc-sim",
        "security_policy": "Basic256Sha256",
        "timeout_s": TIMEOUT_S, "keepalive_count": KEEPALIVE, "open_wait_s": 10.0,
        "channels": {p["channel"]: nodes[p["channel"]] for p in bioreactor_points()},
    }  # fmt: skip
    return bound_app(tmp_path, "opcua", options, params)


@pytest.mark.slow
def test_app_holds_its_bands_over_opcua_then_sees_the_plant_vanish(tmp_path: Path) -> None:
    with plant(tmp_path, "opcua", 30) as (proc, port):
        app = load_app(opcua_app(tmp_path, port, PARAMS))
        driver = app.drivers["plant"]
        with band_run(app) as run:
            run.hold_bands("opcua", grow_s=15)
            assert driver.period_ms == 200.0  # type: ignore[attr-defined]  # the control task's
            dstats = driver.statistics()  # type: ignore[attr-defined]
            assert dstats["connects"] == 1 and dstats["writes"] > 0, dstats
            print(f"HIL opcua driver: {dstats}")

            proc.kill()  # the plant process dies: no answer, then no connection
            proc.wait(5)
            took = run.inputs_turn_bad(10)
            stale_s = driver.options.stale_s(driver.period_ms)  # type: ignore[attr-defined]
            print(f"HIL opcua: DO BAD {took:.3f} s after the plant died (staleness {stale_s} s)")
            assert took <= stale_s + 0.2 + 0.1, took  # + a control period


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

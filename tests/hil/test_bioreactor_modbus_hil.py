"""The bioreactor bound with the `modbus` driver against `vplc sim serve --protocol modbus`.

Real time, real TCP, two processes: the plant steps at 10 Hz in its own process and is read
and written over Modbus; the app's control task (200 ms) must hold T 37 ± 0.2, pH 7 ± 0.05 and
DO 40 ± 5 with no BAD input; then the plant dies and the inputs turn BAD within one poll
period plus the timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime import load_app
from sim_hardware._modbus_serve import plant_map
from tests.hil._bands import PARAMS, band_run, plant
from tests.hil.conftest import bioreactor_points, bound_app

POLL_MS, TIMEOUT_S = 100.0, 0.3


def modbus_app(tmp_path: Path, port: int, params: dict[str, Any]) -> Path:
    """plc_apps/bioreactor copied with its driver turned into `type: modbus`."""
    where = plant_map("bioreactor")
    options = {
        "host": "127.0.0.1", "port": port, "poll_ms": POLL_MS, "timeout_s": TIMEOUT_S,
        "retries": 0, "open_wait_s": 5.0,
        "channels": {p["channel"]: where[p["channel"]] for p in bioreactor_points()},
    }  # fmt: skip
    return bound_app(tmp_path, "modbus", options, params)


@pytest.mark.slow
def test_app_holds_its_bands_over_modbus_then_sees_the_plant_vanish(tmp_path: Path) -> None:
    with plant(tmp_path, "modbus", 15) as (proc, port):
        app = load_app(modbus_app(tmp_path, port, PARAMS))
        with band_run(app) as run:
            run.hold_bands("modbus", grow_s=10)

            proc.kill()  # the plant process dies: no answer, then no connection
            proc.wait(5)
            took = run.inputs_turn_bad(5)
            print(f"HIL modbus: DO BAD {took:.3f} s after the plant died")
            assert took <= POLL_MS / 1e3 + TIMEOUT_S + 0.2 + 0.1, took  # + a control period

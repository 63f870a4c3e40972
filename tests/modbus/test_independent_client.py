"""An independent Modbus implementation reads and writes vplc's server: npm's modbus-serial
(pure JavaScript), installed by this test's set-up into a cache folder."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests._node import node_and_npm
from tests.modbus.conftest import Served
from tests.modbus.test_server import f32, wait

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("VPLC_NPM_CACHE", Path.home() / ".cache" / "vplc-test-npm"))


@pytest.fixture(scope="module")
def modbus_serial() -> Path:
    """node_modules with modbus-serial 8 (npm install once; serialport, optional, left out)."""
    node_and_npm("the independent client")  # a fresh machine: as the OPC UA interop test
    target = CACHE / "modbus-serial-8"
    if not (target / "node_modules" / "modbus-serial").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-save", "--omit=optional", "--no-audit", "--no-fund",
             "--prefix", str(target), "modbus-serial@8"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return target / "node_modules"


def run_client(node_modules: Path, port: int) -> dict[str, dict[str, Any]]:
    env = os.environ | {"NODE_PATH": str(node_modules)}
    out = subprocess.run(
        ["node", str(HERE / "client.js"), str(port)],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    return {r["name"]: r for r in map(json.loads, out.stdout.splitlines())}


def test_modbus_serial_reads_and_writes(
    served: Served, modbus_serial: Path, tmp_path: Path
) -> None:
    runtime, client = served(writes={"enabled": True, "allow": ["127.0.0.0/8"],
                                     "audit_file": str(tmp_path / "audit.jsonl")})  # fmt: skip
    # The scan's first latched inputs reach the server process a sample or two after RUN.
    wait(lambda: f32(client, 0, "input") == 1.5)
    got = run_client(modbus_serial, runtime.modbus.config.port)
    assert got["read_x"]["value"] == 1.5
    assert got["read_gain"]["value"] == 2.0
    assert got["read_limit"]["value"] == 5
    assert got["read_enable"]["value"] is False
    assert got["write_gain"]["value"] == 6.25
    assert got["write_limit"]["value"] == 42
    assert got["write_enable"]["value"] is True
    params = runtime.app.parameters
    assert (params["gain"].value, params["limit"].value, params["enable"].value) == (6.25, 42, True)
    # refusals as the other implementation decodes them: illegal value, illegal address
    assert (got["write_too_big"]["ok"], got["write_too_big"]["code"]) == (False, 3)
    assert (got["write_point"]["ok"], got["write_point"]["code"]) == (False, 2)
    assert (got["read_unmapped"]["ok"], got["read_unmapped"]["code"]) == (False, 2)

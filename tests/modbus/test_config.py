"""A broken register map is invalid input: exit 2, every problem named by its YAML path."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from pymodbus.client import ModbusTcpClient

from runtime import load_app
from runtime.modbus import ModbusConfigError, load_modbus_config
from tests.drivers.modbus_device import free_port
from tests.modbus.conftest import MAP, app_dir

VPLC = str(Path(sys.executable).with_name("vplc"))


def config(tmp_path: Path, body: dict[str, Any]) -> Path:
    path = tmp_path / "modbus.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([{"point": "NOPE", "table": "input", "address": 0}], "at map.0.point: no point 'NOPE'"),
        ([{"parameter": "nope", "table": "holding", "address": 0}], "at map.0.parameter"),
        ([{"point": "X", "table": "input", "address": 0},
          {"point": "Y", "table": "input", "address": 1}],
         "at map.1.address: input 1 of 'Y' is also map.0 ('X')"),
        ([{"parameter": "limit", "table": "holding", "address": 0, "type": "int16",
           "scale": 100}], "at map.0.type: int16 (scale 100) cannot hold 'limit'"),
        ([{"point": "X", "table": "input", "address": 0, "type": "uint16"}],
         "at map.0.type: uint16 (scale 1) cannot hold 'X'"),
        ([{"parameter": "enable", "table": "holding", "address": 0, "type": "int16"}],
         "at map.0.type: 'enable' is BOOL"),
        ([{"parameter": "gain", "table": "input", "address": 0}],
         "at map.0.table: parameter 'gain' is writable"),
    ],
)  # fmt: skip
def test_map_problems_name_their_path(tmp_path: Path, entries: list[Any], expected: str) -> None:
    app = load_app(app_dir(tmp_path))
    with pytest.raises(ModbusConfigError) as err:
        load_modbus_config(config(tmp_path, {"map": entries}), app)
    assert expected in str(err.value), str(err.value)
    assert str(tmp_path / "modbus.yaml") in str(err.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"map": [{"point": "X", "table": "coil", "address": 0, "type": "float32"}]},
         "at map.0: type: a coil holds bool"),
        ({"map": [{"point": "X", "table": "input", "address": 65535, "type": "float32"}]},
         "runs past 65535"),
        ({"map": MAP, "writes": {"enabled": True}}, "at writes.allow: writes are enabled"),
        ({"map": MAP, "writes": {"allow": ["not-an-ip"]}},
         "at writes.allow: 'not-an-ip' (item 0) is not an IP"),
        ({"map": MAP, "colour": "red"}, "at colour: unknown key"),
    ],
)  # fmt: skip
def test_schema_problems(tmp_path: Path, body: dict[str, Any], expected: str) -> None:
    app = load_app(app_dir(tmp_path))
    with pytest.raises(ModbusConfigError) as err:
        load_modbus_config(config(tmp_path, body), app)
    assert expected in str(err.value), str(err.value)
    assert not isinstance(err.value, ValidationError)


def test_vplc_run_exits_2_naming_the_path(tmp_path: Path) -> None:
    bad = config(tmp_path, {"map": [{"point": "X", "table": "input", "address": 0},
                                    {"point": "X", "table": "input", "address": 1}]})  # fmt: skip
    out = subprocess.run(
        [VPLC, "run", str(app_dir(tmp_path)), "--modbus", str(bad), "--no-view",
         "--duration", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "at map.1.address: input 1 of 'X' is also map.0 ('X')" in out.stderr
    assert str(bad) in out.stderr
    virtual = subprocess.run(
        [VPLC, "run", str(app_dir(tmp_path)), "--modbus", str(bad), "--virtual",
         "--duration", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert virtual.returncode == 2 and "--modbus needs real time" in virtual.stderr


def test_vplc_run_serves_the_map(tmp_path: Path) -> None:
    """The CLI end to end: `vplc run --modbus` in real time, read by pymodbus' client."""
    port = free_port()
    good = config(tmp_path, {"port": port, "map": MAP})
    proc = subprocess.Popen(
        [VPLC, "run", str(app_dir(tmp_path)), "--modbus", str(good), "--no-view",
         "--duration", "20", "--stats-json", str(tmp_path / "stats.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    try:
        deadline = time.monotonic() + 15
        while not client.connect():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
            time.sleep(0.1)
        rr = client.read_holding_registers(10, count=2, device_id=1)
        assert ModbusTcpClient.convert_from_registers(rr.registers, client.DATATYPE.FLOAT32) == 2.0
        assert client.write_register(12, 7, device_id=1).exception_code == 1  # writes are off
    finally:
        client.close()
        proc.terminate()
        proc.wait(20)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["modbus"]["requests"] >= 2 and stats["modbus"]["exceptions"] >= 1

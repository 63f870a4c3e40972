"""`vplc sim serve --protocol modbus`: the plant's register map, its refusals, the CLI's checks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from hal.modbus import DataType, ModbusRefusedError, Table, decode, encode
from sim_hardware._modbus_serve import ModbusPlant, plant_map

VPLC = str(Path(sys.executable).with_name("vplc"))


def plant() -> ModbusPlant:
    return ModbusPlant(plant="tank", seed=1, noise=False, initial={"level": 40.0})


def f32(p: ModbusPlant, table: Table, address: int) -> float:
    return float(decode(p.read(table, address, 2, 1), DataType.FLOAT32))


def test_map_follows_the_signal_order() -> None:
    m = plant_map("tank")
    assert m["level"] == "input:0:float32"
    assert all(v.startswith(("input:", "discrete_input:", "holding:", "coil:")) for v in m.values())
    addresses = [(v.split(":")[0], int(v.split(":")[1])) for v in m.values()]
    assert len(set(addresses)) == len(addresses)  # no overlap


def test_sensors_read_and_actuators_write() -> None:
    p = plant()
    p.step(100_000_000)
    assert f32(p, Table.INPUT, 0) == pytest.approx(40.0, abs=0.5)
    table, address, _ = plant_map("tank")["inlet_valve"].split(":")
    regs = encode(55.0, DataType.FLOAT32)[0]
    p.write(Table(table), int(address), regs, 1, "127.0.0.1:1")
    assert p.points["inlet_valve"].value == 55.0
    assert f32(p, Table.HOLDING, int(address)) == 55.0  # read back


def test_refusals_change_nothing() -> None:
    p = plant()
    _, address, _ = plant_map("tank")["inlet_valve"].split(":")
    a = int(address)
    with pytest.raises(ModbusRefusedError) as err:
        p.write(Table.HOLDING, a, [0x4200], 1, "x")  # half a float32
    assert err.value.code == 2
    with pytest.raises(ModbusRefusedError) as err:
        p.write(Table.HOLDING, a, [0x7FC0, 0], 1, "x")  # NaN
    assert err.value.code == 3
    with pytest.raises(ModbusRefusedError) as err:
        p.write(Table.HOLDING, 900, [1], 1, "x")
    assert err.value.code == 2
    with pytest.raises(ModbusRefusedError) as err:
        p.read(Table.INPUT, 0, 120, 1)  # runs past the map
    assert err.value.code == 2
    assert p.points["inlet_valve"].value == 0.0


def test_watchdog_de_energises_the_actuators() -> None:
    p = ModbusPlant(plant="tank", seed=1, noise=False, actuator_timeout_s=0.05)
    _, address, _ = plant_map("tank")["inlet_valve"].split(":")
    p.write(Table.HOLDING, int(address), encode(30.0, DataType.FLOAT32)[0], 1, "x")
    asyncio.run(asyncio.sleep(0.1))
    p.step(100_000_000)
    assert p.points["inlet_valve"].value == 0.0 and p.counters["watchdog_trips"] == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--prefix", "x/y"], "--prefix: MQTT options, not used with --protocol modbus"),
        (["--port", "70000"], "--port 70000: expected 1..65535"),
        (["--plant", "nope"], "nope"),
    ],
)
def test_cli_refuses_bad_input_with_exit_2(args: list[str], expected: str) -> None:
    out = subprocess.run(
        [VPLC, "sim", "serve", "--protocol", "modbus", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert expected in out.stderr, out.stderr

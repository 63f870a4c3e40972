"""The runtime's Modbus server with pymodbus' client: reads, the write policy, exception codes,
audited writes through the command path."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pymodbus.client import ModbusTcpClient

from runtime.ops import verify_audit_log
from tests.modbus.conftest import Served

DT = ModbusTcpClient.DATATYPE


def wait(pred, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, "condition not met"
        time.sleep(0.01)


def f32(client: ModbusTcpClient, address: int, table: str = "holding") -> float:
    fn = client.read_holding_registers if table == "holding" else client.read_input_registers
    rr = fn(address, count=2, device_id=1)
    assert not rr.isError(), rr
    return float(ModbusTcpClient.convert_from_registers(rr.registers, DT.FLOAT32))  # type: ignore[arg-type]


def test_reads_points_and_parameters_from_the_last_cycle(served: Served) -> None:
    _, client = served()
    wait(lambda: f32(client, 0, "input") == 1.5)  # X, latched from the memory driver
    rr = client.read_input_registers(2, count=4, device_id=1)
    assert ModbusTcpClient.convert_from_registers(rr.registers, DT.FLOAT64) == 3.0  # Y = 2 X
    assert f32(client, 0) == 1.5 and f32(client, 10) == 2.0  # holding view of X; gain
    assert client.read_holding_registers(12, count=1, device_id=1).registers == [5]
    assert client.read_holding_registers(20, count=1, device_id=1).registers == [200]  # ×100
    assert client.read_coils(0, count=1, device_id=1).bits[0] is False
    # one request spanning several values
    rr = client.read_input_registers(0, count=6, device_id=1)
    assert not rr.isError() and len(rr.registers) == 6


def test_exception_codes(served: Served) -> None:
    _, client = served()
    assert client.read_input_registers(100, count=1, device_id=1).exception_code == 2
    assert client.read_input_registers(4, count=4, device_id=1).exception_code == 2  # runs off
    assert client.read_discrete_inputs(0, count=1, device_id=1).exception_code == 2
    # writes are off by default: illegal function, and nothing changed
    rr = client.write_registers(10, ModbusTcpClient.convert_to_registers(3.0, DT.FLOAT32),
                                device_id=1)  # fmt: skip
    assert rr.exception_code == 1
    assert f32(client, 10) == 2.0


def test_writes_only_from_the_allow_list(served: Served, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    runtime, client = served(writes={"enabled": True, "allow": ["10.1.2.0/24"],
                                     "audit_file": str(audit)})  # fmt: skip
    regs = ModbusTcpClient.convert_to_registers(3.0, DT.FLOAT32)
    assert client.write_registers(10, regs, device_id=1).exception_code == 1
    assert runtime.app.parameters["gain"].value == 2.0


def test_allowed_writes_are_checked_applied_and_audited(served: Served, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    runtime, client = served(writes={"enabled": True, "allow": ["127.0.0.1"],
                                     "audit_file": str(audit)})  # fmt: skip
    params = runtime.app.parameters
    regs = ModbusTcpClient.convert_to_registers(3.5, DT.FLOAT32)
    rr = client.write_registers(10, regs, device_id=1)
    assert not rr.isError(), rr
    assert params["gain"].value == 3.5
    assert f32(client, 10) == 3.5  # read-after-write: at once, not a cycle later
    assert client.write_register(12, 700, device_id=1).isError() is False
    assert params["limit"].value == 700
    assert not client.write_coil(0, True, device_id=1).isError()
    assert params["enable"].value is True
    assert not client.write_register(20, 425, device_id=1).isError()  # scale 100 → 4.25
    assert params["gain"].value == 4.25
    # out of range (max 10): illegal data value, nothing applied
    big = ModbusTcpClient.convert_to_registers(11.0, DT.FLOAT32)
    assert client.write_registers(10, big, device_id=1).exception_code == 3
    nan = ModbusTcpClient.convert_to_registers(float("nan"), DT.FLOAT32)
    assert client.write_registers(10, nan, device_id=1).exception_code == 3
    assert params["gain"].value == 4.25
    # half a float, a point (read-only), an unmapped register: illegal data address
    assert client.write_register(10, 0, device_id=1).exception_code == 2
    assert client.write_registers(0, big, device_id=1).exception_code == 2
    assert client.write_register(300, 1, device_id=1).exception_code == 2
    # the trail: every applied write, by the client's address, old → new
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    cmds = [r for r in records if r.get("kind", r.get("event")) == "command" or r.get("cmd")]
    applied = [(r["target"], r["old"], r["new"]) for r in cmds if r.get("status") == "accepted"]
    assert applied == [("gain", 2.0, 3.5), ("limit", 5, 700), ("enable", False, True),
                       ("gain", 3.5, 4.25)], records  # fmt: skip
    assert all(r["user"] == "modbus@127.0.0.1" for r in cmds)
    assert verify_audit_log(audit).ok

"""MapBank: a sample of the scan and an accepted write's read-after-write never undo each other."""

from __future__ import annotations

import threading
from typing import Any

from hal.modbus import Table
from runtime.core.manifest import ParameterSpec
from runtime.modbus._bank import MapBank
from runtime.modbus._config import ModbusServerConfig
from runtime.ops._commands import CommandResponse, SetParameterCommand


def _bank(params_seen: list[Any]) -> MapBank:
    cfg = ModbusServerConfig.model_validate(
        {
            "writes": {"enabled": True, "allow": ["127.0.0.1"]},
            "map": [{"parameter": "gain", "table": "holding", "address": 10}],
        }
    )
    params = {"gain": ParameterSpec(name="gain", default=2.0, min=0, max=10)}

    def apply(cmd: SetParameterCommand) -> CommandResponse:
        params_seen[0] = cmd.value  # ChildLink: the answer's value is in the copy first
        return CommandResponse(id=cmd.id, cmd=cmd.cmd, status="accepted", old=2.0, new=cmd.value)

    return MapBank(cfg, params, [2.0], apply=apply, audit=None, app_name="t",
                   source="modbus:test")  # fmt: skip


def test_a_sample_built_before_a_write_does_not_hide_the_written_value() -> None:
    """The sampler reads the parameters, a write is accepted meanwhile, the sample is stored:
    the written value must still be what a client reads next (it was 2.0 vs 3.5, seldom)."""
    params_seen: list[Any] = [2.0]
    bank = _bank(params_seen)
    writer = threading.Thread(target=bank._apply, args=("gain", 3.5, "127.0.0.1:5555"))

    def slow_sample(current: list[Any]) -> list[Any]:
        stale = [params_seen[0]]  # read before the write is accepted
        writer.start()
        writer.join(timeout=0.3)  # the write is accepted while this sample is being built
        return stale

    bank.refresh(slow_sample)
    writer.join(timeout=5)
    assert not writer.is_alive()
    assert bank.values == [3.5]
    words = bank.read(Table("holding"), 10, 2, unit=1)
    assert bank.values == [3.5] and len(words) == 2
    # the next sample reads the sampler's copy, which the write updated
    bank.refresh(lambda current: [params_seen[0]])
    assert bank.values == [3.5]

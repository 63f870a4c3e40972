"""The register map as a ``hal.modbus`` RegisterBank: reads from the last frame, checked writes."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from hal import IecType
from hal.modbus import (
    ILLEGAL_ADDRESS,
    ILLEGAL_FUNCTION,
    ILLEGAL_VALUE,
    WIDTH,
    DataType,
    ModbusRefusedError,
    Table,
    decode,
    encode,
)
from runtime.core.manifest import ParameterSpec
from runtime.modbus._config import MapEntry, ModbusServerConfig
from runtime.ops._audit import AuditLog
from runtime.ops._commands import CommandResponse, SetParameterCommand

__all__ = ["DEVICE_BUSY", "MapBank"]

DEVICE_BUSY = 6  # the audit trail cannot be written: no record, no action
Apply = Callable[[SetParameterCommand], CommandResponse]


class MapBank:
    """Serves ``config.map`` from ``values`` (one value per map entry, swapped in whole).

    Reads never see half a cycle: ``values`` is replaced, never edited, by whoever samples
    the scan. Writes go to parameters only, when the file enables them and the client's
    address is on the allow-list; each value is range-checked (exception 03 before anything
    is applied), then handed to ``apply`` (the one command path, between two cycles) and
    recorded in the audit trail as ``set_parameter`` by ``modbus@<client>``: Modbus has no
    users, so the client's address is all the trail can name.
    """

    def __init__(
        self,
        config: ModbusServerConfig,
        params: Mapping[str, ParameterSpec],
        values: list[Any],
        *,
        apply: Apply,
        audit: AuditLog | None,
        app_name: str,
        source: str,
    ) -> None:
        """``apply`` answers once the sampler's copy of the parameters holds the new value
        (``runtime.front.ChildLink``): the next sample cannot bring back the old one."""
        self.config, self.params, self.values = config, params, values
        # One sample and one accepted write's patch never interleave: a sample built from the
        # parameters before the write and stored after it would undo the read-after-write.
        self._swap = threading.Lock()
        self.entries = config.map
        self._apply_command, self.audit = apply, audit
        self.app_name, self.source = app_name, source
        # (table, address) → (entry index, register index within the value)
        self.cells: dict[tuple[Table, int], tuple[int, int]] = {}
        for i, e in enumerate(self.entries):
            for k in range(WIDTH[e.dtype]):
                self.cells[(e.table, e.address + k)] = (i, k)
        self.log = structlog.get_logger("vplc.modbus").bind(app=app_name)
        self.counts = dict.fromkeys(("accepted", "refused"), 0)

    def refresh(self, sample: Callable[[list[Any]], list[Any]]) -> None:
        """Swap in ``sample(current)`` whole; the sampler's one way to change ``values``."""
        with self._swap:
            self.values = sample(self.values)

    # ------------------------------------------------------------------ reading
    def read(self, table: Table, address: int, count: int, unit: int) -> Sequence[int]:
        self._check_unit(unit)
        values = self.values
        out: list[int] = []
        cache: dict[int, list[int]] = {}
        for a in range(address, address + count):
            cell = self.cells.get((table, a))
            if cell is None:
                raise ModbusRefusedError(ILLEGAL_ADDRESS, f"{table.value} {a} is not mapped")
            i, k = cell
            if i not in cache:
                cache[i] = self._words(self.entries[i], values[i])
            out.append(cache[i][k])
        return out

    def _words(self, e: MapEntry, value: Any) -> list[int]:
        if e.dtype is DataType.BOOL:
            return [1 if value else 0]
        return encode(float(value) * e.scale, e.dtype)[0]

    def _check_unit(self, unit: int) -> None:
        if self.config.unit is not None and unit != self.config.unit:
            raise ModbusRefusedError(ILLEGAL_ADDRESS, f"unit {unit}")

    # ------------------------------------------------------------------ writing
    async def write(
        self, table: Table, address: int, values: Sequence[int], unit: int, peer: str
    ) -> None:
        self._check_unit(unit)
        policy = self.config.writes
        host = peer.rpartition(":")[0].strip("[]")
        if not policy.enabled:
            raise ModbusRefusedError(ILLEGAL_FUNCTION, "writes are disabled")
        if not policy.permits(host):
            self.log.warning("modbus_write_refused", peer=peer, reason="not on the allow-list")
            raise ModbusRefusedError(ILLEGAL_FUNCTION, f"{host} may not write")
        changes = self._decode_write(table, address, values)
        for name, value in changes:
            try:
                self.params[name].check(value)
            except ValueError as exc:
                self.counts["refused"] += 1
                self.log.warning("modbus_write_refused", peer=peer, reason=str(exc))
                raise ModbusRefusedError(ILLEGAL_VALUE, str(exc)) from None
        if self.audit is not None and self.audit.ready() is not None:
            raise ModbusRefusedError(DEVICE_BUSY, "the audit trail cannot be written")
        loop = asyncio.get_running_loop()
        for name, value in changes:
            resp = await loop.run_in_executor(None, self._apply, name, value, peer)
            if resp.status != "accepted":
                raise ModbusRefusedError(ILLEGAL_VALUE, resp.reason)

    def _decode_write(
        self, table: Table, address: int, values: Sequence[int]
    ) -> list[tuple[str, Any]]:
        """The parameters a request writes, whole values only (half a float is refused)."""
        changes: list[tuple[str, Any]] = []
        a = address
        end = address + len(values)
        while a < end:
            cell = self.cells.get((table, a))
            if cell is None or cell[1] != 0:
                raise ModbusRefusedError(
                    ILLEGAL_ADDRESS, f"{table.value} {a}: no value starts here"
                )
            e = self.entries[cell[0]]
            width = WIDTH[e.dtype]
            if e.parameter is None:
                raise ModbusRefusedError(ILLEGAL_ADDRESS, f"{e.name!r} is read-only")
            if a + width > end:
                raise ModbusRefusedError(ILLEGAL_ADDRESS, f"{e.name!r} needs {width} registers")
            words = values[a - address : a - address + width]
            changes.append((e.parameter, self._value(e, words)))
            a += width
        return changes

    def _value(self, e: MapEntry, words: Sequence[int]) -> Any:
        assert e.parameter is not None
        iec = self.params[e.parameter].type
        if e.dtype is DataType.BOOL:
            return bool(words[0])
        raw = decode(words, e.dtype)
        value = raw / e.scale if e.scale != 1 else raw
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise ModbusRefusedError(ILLEGAL_VALUE, f"{e.parameter!r}: {raw!r}")
        if iec in (IecType.INT, IecType.DINT):
            if value != int(value):
                raise ModbusRefusedError(ILLEGAL_VALUE, f"{e.parameter!r}: {value!r} is no integer")
            return int(value)
        return float(value)

    def _apply(self, name: str, value: Any, peer: str) -> CommandResponse:
        """One set_parameter through the command path, then its audit record (worker thread)."""
        host = peer.rpartition(":")[0].strip("[]")
        cmd = SetParameterCommand(
            cmd="set_parameter", id=f"modbus-{secrets.token_hex(8)}", ts=datetime.now(UTC),
            user=f"modbus@{host}", name=name, value=value,
            reason=f"Modbus write from {peer}",
        )  # fmt: skip
        resp = self._apply_command(cmd)
        self.counts["accepted" if resp.status == "accepted" else "refused"] += 1
        if resp.status == "accepted":
            self._show_accepted(name, resp.new)
        if self.audit is not None:
            try:
                self.audit.append(
                    "command", id=resp.id, cmd=resp.cmd, target=name, user=resp.user, role=None,
                    status=resp.status, reason=resp.reason, why=cmd.reason, old=resp.old,
                    new=resp.new, app=self.app_name, source=self.source,
                )  # fmt: skip
            except Exception as exc:  # the value may be set already: say so loudly
                self.log.error("audit_write_failed", error=repr(exc), id=resp.id)
        self.log.info("modbus_write", peer=peer, parameter=name, status=resp.status,
                      old=resp.old, new=resp.new, reason=resp.reason)  # fmt: skip
        return resp

    def _show_accepted(self, name: str, new: Any) -> None:
        """Read-after-write shows the new value at once, not one sample later."""
        with self._swap:
            values = list(self.values)
            for i, e in enumerate(self.entries):
                if e.parameter == name:
                    values[i] = new
            self.values = values

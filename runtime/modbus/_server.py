"""The runtime's Modbus TCP server: the register map served from the scan's last cycle, audited
parameter writes through the one command path. Runs on its own thread, never on the scan's."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
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
    ModbusTcpServer,
    ServerLimits,
    Table,
    decode,
    encode,
)
from runtime.core._engine import ScanEngine
from runtime.core._handles import Handle
from runtime.modbus._config import MapEntry, ModbusServerConfig
from runtime.ops._audit import AuditLog
from runtime.ops._commands import CommandResponse, SetParameterCommand, apply_command

__all__ = ["ModbusFrontEnd", "attach_modbus"]

DEVICE_BUSY = 6  # the audit trail cannot be written: no record, no action


class ModbusFrontEnd:
    """A ``hal.modbus.RegisterBank`` over the app's points and parameters.

    Reads are served from ``values``, the map's values as the scan left them after its last
    cycle (one list built by a cycle hook and swapped in whole): a request never sees half a
    cycle, and the scan never waits for a client. Writes go to parameters only, when the file
    enables them and the client's address is on the allow-list; each value is range-checked
    (exception 03 before anything is applied), then applied between two cycles by the ops
    command path and recorded in the audit trail as ``set_parameter`` by ``modbus@<client>``:
    Modbus has no users, so the client's address is all the trail can name.
    """

    def __init__(
        self, engine: ScanEngine, config: ModbusServerConfig, *, audit: AuditLog | None
    ) -> None:
        self.engine = engine
        self.config = config
        self.audit = audit
        app = engine.app
        self.entries = config.map
        # Points and parameters both hold ``.value``: the hook reads them, nothing else.
        self._targets: list[Any] = [
            app.image[e.point] if e.point is not None else app.parameters[e.name]
            for e in self.entries
        ]
        self.values: list[Any] = [t.value for t in self._targets]
        # (table, address) → (entry index, register index within the value)
        self.cells: dict[tuple[Table, int], tuple[int, int]] = {}
        for i, e in enumerate(self.entries):
            for k in range(WIDTH[e.dtype]):
                self.cells[(e.table, e.address + k)] = (i, k)
        self.server = ModbusTcpServer(
            self, host=config.host, port=config.port,
            limits=ServerLimits(max_connections=config.max_connections,
                                idle_timeout_s=config.idle_timeout_s),
        )  # fmt: skip
        self.log = structlog.get_logger("vplc.modbus").bind(app=app.name)
        self.counts = dict.fromkeys(("accepted", "refused"), 0)
        self._hook: Handle | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._hook = self.engine.add_cycle_hook(self._snapshot)
        self.server.start_thread(name="modbus-server")
        self.engine.add_statistics("modbus", self.statistics)
        self.log.info("modbus_server_listening", host=self.config.host, port=self.server.port,
                      writes=self.config.writes.enabled)  # fmt: skip

    def stop(self) -> None:
        if self._hook is not None:
            self._hook.remove()
        self.server.stop()

    def _snapshot(self, task: Any, now_ns: int) -> None:
        self.values = [t.value for t in self._targets]  # one swap: a reader sees one cycle

    def statistics(self) -> dict[str, Any]:
        return self.server.statistics() | {"writes_" + k: v for k, v in self.counts.items()}

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
                self.engine.app.parameters[name].spec.check(value)
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
        iec = self.engine.app.parameters[e.parameter].spec.type
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
        resp = apply_command(self.engine, cmd, timeout_s=self.config.command_timeout_s)
        self.counts["accepted" if resp.status == "accepted" else "refused"] += 1
        if resp.status == "accepted":
            # Read-after-write shows the new value at once, not one cycle later (the hook's
            # next list is built from the parameter, which already holds it).
            values = list(self.values)
            for i, e in enumerate(self.entries):
                if e.parameter == name:
                    values[i] = resp.new
            self.values = values
        if self.audit is not None:
            try:
                self.audit.append(
                    "command", id=resp.id, cmd=resp.cmd, target=name, user=resp.user, role=None,
                    status=resp.status, reason=resp.reason, why=cmd.reason, old=resp.old,
                    new=resp.new, app=self.engine.app.name,
                    source=f"modbus:{self.config.host}:{self.server.port}",
                )  # fmt: skip
            except Exception as exc:  # the value may be set already: say so loudly
                self.log.error("audit_write_failed", error=repr(exc), id=resp.id)
        self.log.info("modbus_write", peer=peer, parameter=name, status=resp.status,
                      old=resp.old, new=resp.new, reason=resp.reason)  # fmt: skip
        return resp


def attach_modbus(
    engine: ScanEngine, config: ModbusServerConfig, *, audit: AuditLog | None
) -> ModbusFrontEnd:
    """Start serving ``config``'s map of the engine's app (raise OSError if the port is taken).

    Writes need an audit trail: the runtime's (``audit``) or the file's ``writes.audit_file``.
    """
    writes = config.writes
    if writes.enabled and audit is None:
        if writes.audit_file is None:
            raise ValueError(
                "writes.enabled needs an audit trail: give writes.audit_file (or run with an "
                "--mqtt config that has one)"
            )
        audit = AuditLog(writes.audit_file)
    front = ModbusFrontEnd(engine, config, audit=audit)
    front.start()
    return front

"""The runtime's Modbus TCP server: a supervised process serving the register map from the
shared frame (``runtime.front``); parameter writes come back through the one command path."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.front import Feed, FrontEnd, check_port
from runtime.modbus._child import ModbusInit, child_main
from runtime.modbus._config import ModbusServerConfig
from runtime.ops._audit import AuditLog

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["ModbusServer", "attach_modbus"]

_START_S = 20.0  # a spawned interpreter on a loaded machine; the port is known to be free


class ModbusServer(FrontEnd):
    """The scan pays only for the engine's shared FrameWriter (one per engine, whatever the
    number of front-ends): requests, floods of connections and malformed frames are handled
    in a process with its own GIL, so they cannot slow the scan down."""

    child_kind = "modbus"
    child_target = staticmethod(child_main)

    def __init__(
        self,
        engine: ScanEngine,
        config: ModbusServerConfig,
        *,
        audit_file: Path | None,
        log_format: str = "console",
    ) -> None:
        super().__init__(engine, config, log_format=log_format)
        self.config, self.audit_file = config, audit_file

    def start(self) -> None:
        super().start()
        self.engine.add_statistics("modbus", self.statistics)

    def connection_status(self) -> dict[str, Any]:
        return {
            "who": f"modbus server {self.config.host}:{self.config.port}",
            "endpoint": f"{self.config.host}:{self.config.port}",
            "connected": self.connected.is_set(),
            "sessions": self._child_stats.get("open_connections", 0),
        }

    def child_init(self, feed: Feed) -> ModbusInit:
        layout = feed.layout()
        slot_of = {p.name: i for i, p in enumerate(layout.points)}
        kinds = layout.kinds
        param_index = {name: k for k, (name, _) in enumerate(layout.params)}
        slots: list[tuple[str, int, str]] = []
        for e in self.config.map:
            if e.point is not None:
                i = slot_of[e.point]
                slots.append(("point", i, kinds[i]))
            else:
                assert e.parameter is not None
                slots.append(("param", param_index[e.parameter], ""))
        return ModbusInit(
            config=self.config,
            audit_file=self.audit_file,
            shm_name=feed.shm_name,
            n_points=feed.n_points,
            n_alarms=feed.n_alarms,
            app_name=self.engine.app.name,
            slots=slots,
            params={name: param.spec for name, param in layout.params},
            param_values=[param.value for _, param in layout.params],
            log_format=self.log_format,
        )


def attach_modbus(
    engine: ScanEngine,
    config: ModbusServerConfig,
    *,
    audit: AuditLog | None,
    log_format: str = "console",
) -> ModbusServer:
    """Serve ``config``'s map of the engine's app; listening when this returns.

    Raises OSError when the port is taken or the server does not come up, ValueError when
    writes are enabled without an audit trail (the runtime's ``audit`` or the file's
    ``writes.audit_file``).
    """
    writes = config.writes
    audit_file = audit.path if audit is not None else writes.audit_file
    if writes.enabled and audit_file is None:
        raise ValueError(
            "writes.enabled needs an audit trail: give writes.audit_file (or run with an "
            "--mqtt config that has one)"
        )
    if audit is None and audit_file is not None:
        AuditLog(audit_file)  # a trail that cannot be opened is refused here, not per write
    check_port(config.host, config.port)
    server = ModbusServer(engine, config, audit_file=audit_file, log_format=log_format)
    server.start()
    if not server.wait_started(_START_S):
        server.stop()
        raise OSError(f"the Modbus server on {config.host}:{config.port} did not start")
    return server

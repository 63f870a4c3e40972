"""The in-process MQTT bridge: the network thread runs next to the scan thread."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from runtime._access import AccessConfig, load_access_config
from runtime._audit import AuditLog
from runtime._command_handler import CommandHandler
from runtime.mqtt._config import MqttConfig
from runtime.mqtt._core import BridgeCore
from runtime.mqtt._payloads import birth_payload
from runtime.mqtt._tap import TelemetryTap

if TYPE_CHECKING:
    from runtime._engine import ScanEngine

__all__ = ["MqttBridge", "check_deadbands"]


def check_deadbands(engine: ScanEngine, config: MqttConfig) -> None:
    unknown = sorted(set(config.deadband) - {p.name for p in engine.image.points})
    if unknown:
        raise ValueError(f"deadband: unknown point(s) {unknown}")


class MqttBridge(BridgeCore):
    """Publishes an engine's telemetry and serves its commands over MQTT.

    ``start()`` attaches a TelemetryTap to the engine's fastest task and starts a thread
    running an asyncio loop with the aiomqtt client; ``stop()`` publishes "offline",
    disconnects and detaches. The scan thread only ever touches the tap; a broker outage
    costs the scan nothing (the bridge reconnects with capped exponential backoff). The
    network thread shares the GIL with the scan: under heavy telemetry use
    ``process: true`` (ProcessBridge) instead.
    """

    def __init__(
        self,
        engine: ScanEngine,
        config: MqttConfig,
        *,
        access: AccessConfig | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        check_deadbands(engine, config)
        self.engine = engine
        if access is None and config.access_file is not None:
            access = load_access_config(config.access_file)
        if audit is None and config.audit_file is not None:
            audit = AuditLog(config.audit_file)
        prefix = f"vplc/{config.site}/{config.node}/{engine.app.name}"
        handler = CommandHandler(
            engine,
            access=access,
            audit=audit,
            timeout_s=config.command_timeout_s,
            max_bytes=config.max_command_bytes,
            source=f"mqtt:{prefix}/cmd",
        )
        tap = TelemetryTap.for_engine(
            engine,
            deadbands=config.deadband,
            sample_ns=round(config.sample_ms * 1e6),
            capacity=config.queue_size,
        )
        super().__init__(config, app_name=engine.app.name, tap=tap, handler=handler, audit=audit)

    def start(self) -> None:
        """Attach the tap and start the network thread; returns at once."""
        if self._thread is not None:
            return
        self.engine.fastest.hooks.append(self.tap)
        self.start_loop(f"mqtt-{self.engine.app.name}")

    def stop(self, timeout: float = 5.0) -> None:
        """Publish 'offline', disconnect, join the thread and detach the tap."""
        self.stop_loop(timeout)
        if self.tap in self.engine.fastest.hooks:
            self.engine.fastest.hooks.remove(self.tap)

    def _birth(self, wall_ns: int) -> dict[str, Any]:
        return birth_payload(self.engine, wall_ns=wall_ns)

    def _engine_statistics(self) -> dict[str, Any]:
        return self.engine.statistics()

    def _wall0_ns(self) -> int:
        engine = self.engine
        return time.time_ns() - (engine.clock.now_ns() - engine.epoch_ns)

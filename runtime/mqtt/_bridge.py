"""The in-process MQTT bridge: the network thread runs next to the scan thread."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hal import Point
from runtime.mqtt._config import MqttConfig
from runtime.mqtt._core import BridgeCore
from runtime.mqtt._instance import Instance
from runtime.mqtt._payloads import birth_payload
from runtime.mqtt._tap import TelemetryTap
from runtime.ops._access import AccessConfig, load_access_config
from runtime.ops._audit import AuditLog
from runtime.ops._command_handler import CommandHandler

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine
    from runtime.core._handles import Handle

__all__ = ["MqttBridge", "check_deadbands", "resolve_deadbands"]


def check_deadbands(engine: ScanEngine, config: MqttConfig) -> None:
    unknown = sorted(set(config.deadband) - {p.name for p in engine.image.points})
    if unknown:
        raise ValueError(f"deadband: unknown point(s) {unknown}")


def resolve_deadbands(points: Sequence[Point], config: MqttConfig) -> dict[str, float]:
    """Each point's deadband in engineering units: its own entry, else ``deadband_percent``
    of its declared range (numeric points with a range), else 0 (every change is sent)."""
    bands: dict[str, float] = {}
    for p in points:
        if p.name in config.deadband:
            bands[p.name] = float(config.deadband[p.name])
        elif p.type.is_numeric and p.spec.range is not None:
            lo, hi = p.spec.range
            bands[p.name] = (hi - lo) * config.deadband_percent / 100.0
        else:
            bands[p.name] = 0.0
    return bands


class MqttBridge(BridgeCore):
    """Publishes an engine's telemetry and serves its commands over MQTT.

    ``start()`` attaches a TelemetryTap to the engine's fastest task and starts a thread
    running an asyncio loop with the MQTT session; ``stop()`` publishes the last values, marks
    every retained topic stale, says "offline" and disconnects. The scan thread only ever
    touches the tap; a broker outage costs the scan nothing. The network thread shares the
    GIL with the scan: under heavy telemetry use ``process: true`` (ProcessBridge) instead.
    """

    def __init__(
        self,
        engine: ScanEngine,
        config: MqttConfig,
        *,
        access: AccessConfig | None = None,
        audit: AuditLog | None = None,
        instance: Instance | None = None,
    ) -> None:
        check_deadbands(engine, config)
        self.engine = engine
        self._tap_hook: Handle | None = None
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
        points = engine.image.points
        self.deadbands = resolve_deadbands(points, config)
        tap = TelemetryTap.for_engine(
            engine,
            deadbands=self.deadbands,
            sample_ns=round(config.sample_ms * 1e6),
            capacity=config.queue_size,
        )
        super().__init__(
            config,
            app_name=engine.app.name,
            tap=tap,
            handler=handler,
            audit=audit,
            instance=instance or Instance(),
            resolutions=[p.spec.resolution for p in points],
        )

    def start(self) -> None:
        """Attach the tap and start the network thread; returns at once."""
        if self._tap_hook is None:  # the engine's hook API: safe from this thread
            self._tap_hook = self.engine.add_cycle_hook(self.tap)
        self.start_loop(f"mqtt-{self.engine.app.name}")

    def stop(self, timeout: float = 5.0) -> None:
        """Last values, stale marks, 'offline'; disconnect, join the thread, detach the tap."""
        self.stop_loop(timeout)
        if self._tap_hook is not None:
            self._tap_hook.remove()
            self._tap_hook = None

    def connection_status(self) -> dict[str, Any]:
        return self.session.connection_status()

    def _final_sample(self) -> None:
        # Only once the scan has stopped: the tap is the scan thread's while it runs.
        if not self.engine.running:
            self.tap.sample(self.engine.now_ns)

    def _birth(self, wall_ns: int) -> dict[str, Any]:
        return birth_payload(
            self.engine, wall_ns=wall_ns, instance=self.instance, deadbands=self.deadbands
        )

    def _engine_statistics(self) -> dict[str, Any]:
        return self.engine.statistics()

    def _wall0_ns(self) -> int:
        engine = self.engine
        return time.time_ns() - (engine.clock.now_ns() - engine.epoch_ns)

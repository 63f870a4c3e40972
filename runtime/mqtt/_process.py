"""The out-of-process MQTT bridge: the shared frame out of the scan, a supervised child for MQTT."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal.mqtt import check_transport, register_connection
from runtime.front import Feed, FrontEnd
from runtime.mqtt._bridge import check_deadbands, resolve_deadbands
from runtime.mqtt._child import ChildInit, child_main
from runtime.mqtt._config import MqttConfig
from runtime.mqtt._instance import Instance
from runtime.mqtt._payloads import birth_payload
from runtime.ops._access import AccessConfig, load_access_config

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["ProcessBridge"]


class ProcessBridge(FrontEnd):
    """MqttBridge's behaviour with the network in a child process (``process: true``).

    The scan thread only pays for the engine's shared FrameWriter (``runtime.front``); MQTT,
    JSON and TLS run in a spawned child that holds its own GIL; the supervision (commands
    applied between cycles, texts and statistics down the pipe, restarts with backoff) is
    ``FrontEnd``'s.
    """

    child_kind = "mqtt"
    child_target = staticmethod(child_main)

    def __init__(
        self,
        engine: ScanEngine,
        config: MqttConfig,
        *,
        access: AccessConfig | None = None,
        audit_file: Path | None = None,
        log_format: str = "console",
        instance: Instance | None = None,
    ) -> None:
        check_deadbands(engine, config)
        super().__init__(engine, config, log_format=log_format)
        self.config = config
        if access is None and config.access_file is not None:
            access = load_access_config(config.access_file)
        if access is not None:  # refused here, not only in the child: the caller sees why
            check_transport(config, secrets="command tokens (access configuration)")
        self.access = access
        self.instance = instance or Instance()
        self.deadbands = resolve_deadbands(engine.image.points, config)
        self.audit_file = audit_file if audit_file is not None else config.audit_file
        register_connection(self)

    def connection_status(self) -> dict[str, Any]:
        """The child's session as it last reported it (every 0.5 s)."""
        conn = self._child_stats.get("connection")
        if isinstance(conn, dict):
            return conn
        return {
            "who": f"bridge vplc/{self.config.site}/{self.config.node}/{self.engine.app.name}",
            "endpoint": self.config.endpoint,
            "connected": False,
            "reason": "starting" if self._proc is not None else "not started",
            "last_error": "",
            "collision": None,
        }

    def child_init(self, feed: Feed) -> ChildInit:
        engine = self.engine
        layout = feed.layout()
        points = layout.points
        return ChildInit(
            config=self.config,
            access=self.access,
            audit_file=self.audit_file,
            shm_name=feed.shm_name,
            app_name=engine.app.name,
            names=[p.name for p in points],
            types=[p.type for p in points],
            kinds=layout.kinds,
            alarm_paths=[path for path, _ in layout.alarms],
            param_names=[name for name, _ in layout.params],
            param_values=[param.value for _, param in layout.params],
            phase_paths=[path for path, _ in layout.phases],
            phase_views=[(probe.state, probe.step) for _, probe in layout.phases],
            deadbands=self.deadbands,
            resolutions=[p.spec.resolution for p in points],
            instance=self.instance,
            birth=birth_payload(
                engine, wall_ns=time.time_ns(), instance=self.instance, deadbands=self.deadbands
            ),
            engine_stats=engine.statistics(),
            wall0_ns=self._wall0(),
            log_format=self.log_format,
        )

"""The scan-process side of the Sparkplug edge node: a supervised child on the shared frame."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal.mqtt import register_connection
from runtime.front import Feed, FrontEnd
from runtime.mqtt._bridge import check_deadbands, resolve_deadbands
from runtime.mqtt._config import MqttConfig
from runtime.ops._access import load_access_config
from runtime.sparkplug._child import child_main
from runtime.sparkplug._init import SparkplugInit

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["SparkplugNode", "default_bdseq_file"]


def default_bdseq_file(group_id: str, edge_node_id: str) -> Path:
    """``$VPLC_STATE_DIR/sparkplug/<group>-<node>.bdseq`` (the ids as a safe file name)."""
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{group_id}-{edge_node_id}")
    return Path(base) / "sparkplug" / f"{safe[:150]}.bdseq"


class SparkplugNode(FrontEnd):
    """A Sparkplug B edge node for one engine, in its own process.

    The scan thread pays only for the engine's shared FrameWriter (``runtime.front``, the same
    frame the MQTT bridge and the OPC UA server read); protobuf and MQTT run in a spawned
    child supervised by ``FrontEnd`` (commands applied between cycles, texts and statistics
    down the pipe, restarts with backoff).
    """

    child_kind = "sparkplug"
    child_target = staticmethod(child_main)

    def __init__(
        self, engine: ScanEngine, config: MqttConfig, *, log_format: str = "console"
    ) -> None:
        sp = config.sparkplug
        if sp is None:
            raise ValueError("the MQTT config has no sparkplug section")
        check_deadbands(engine, config)
        super().__init__(engine, config, log_format=log_format)
        self.config = config
        self.access = load_access_config(config.access_file) if config.access_file else None
        self.audit_file = config.audit_file
        self.bdseq_file = sp.bdseq_file or default_bdseq_file(sp.group_id, sp.edge_node_id)
        register_connection(self)

    def connection_status(self) -> dict[str, Any]:
        """The child's session as it last reported it (every 0.5 s)."""
        conn = self._child_stats.get("connection")
        if isinstance(conn, dict):
            return conn
        sp = self.config.sparkplug
        assert sp is not None
        return {
            "who": f"sparkplug spBv1.0/{sp.group_id}/{sp.edge_node_id}",
            "endpoint": self.config.endpoint,
            "connected": False,
            "reason": "starting" if self._proc is not None else "not started",
            "last_error": "",
            "collision": None,
        }

    def child_init(self, feed: Feed) -> SparkplugInit:
        engine = self.engine
        layout = feed.layout()
        bands = resolve_deadbands(layout.points, self.config)
        return SparkplugInit(
            config=self.config,
            access=self.access,
            audit_file=self.audit_file,
            bdseq_file=self.bdseq_file,
            shm_name=feed.shm_name,
            app_name=engine.app.name,
            app_version=engine.app.manifest.version,
            points=layout.point_infos(),
            kinds=layout.kinds,
            deadbands=[bands.get(p.name, 0.0) for p in layout.points],
            n_alarms=feed.n_alarms,
            alarm_paths=[path for path, _ in layout.alarms],
            params=[param.spec for _, param in layout.params],
            param_values=[param.value for _, param in layout.params],
            phase_paths=[path for path, _ in layout.phases],
            phase_views=[(probe.state, probe.step) for _, probe in layout.phases],
            engine_stats=engine.statistics(),
            wall0_ns=self._wall0(),
            log_format=self.log_format,
        )

    def wait_connected(self, timeout: float) -> bool:
        """True once the child's session is up, False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.wait(0.05):
                return True
        return False

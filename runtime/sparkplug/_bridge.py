"""The scan-process side of the Sparkplug edge node: the shared frame out, a supervised child."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hal.mqtt import register_connection
from runtime.core._handles import Handle
from runtime.mqtt._bridge import check_deadbands, resolve_deadbands
from runtime.mqtt._config import MqttConfig
from runtime.mqtt._process import ProcessBridge
from runtime.mqtt._shm import SharedFrame
from runtime.mqtt._tap import engine_alarms, engine_phases
from runtime.mqtt._writer import FrameWriter, point_kinds
from runtime.ops._access import load_access_config
from runtime.sparkplug._child import child_main
from runtime.sparkplug._init import PointInfo, SparkplugInit

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["SparkplugNode", "default_bdseq_file"]


def default_bdseq_file(group_id: str, edge_node_id: str) -> Path:
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{group_id}-{edge_node_id}")
    return Path(base) / "sparkplug" / f"{safe[:150]}.bdseq"


class SparkplugNode(ProcessBridge):
    """A Sparkplug B edge node for one engine, in its own process, fed like the MQTT bridge.

    The scan thread only runs a FrameWriter hook (values into a seqlocked shared-memory
    block every ``sample_ms``); protobuf and MQTT run in a spawned child. Supervision, the
    link thread (commands applied between cycles, texts and statistics down the pipe) and
    the restart with backoff are the MQTT ProcessBridge's.
    """

    child_kind = "sparkplug"

    def __init__(
        self, engine: ScanEngine, config: MqttConfig, *, log_format: str = "console"
    ) -> None:
        # ProcessBridge.__init__ is the JSON bridge's (its birth, its instance); only the
        # state its lifecycle methods use is set here.
        sp = config.sparkplug
        if sp is None:
            raise ValueError("the MQTT config has no sparkplug section")
        check_deadbands(engine, config)
        self.engine, self.config, self.log_format = engine, config, log_format
        self.access = load_access_config(config.access_file) if config.access_file else None
        self.audit_file = config.audit_file
        self.bdseq_file = sp.bdseq_file or default_bdseq_file(sp.group_id, sp.edge_node_id)
        deadbands = resolve_deadbands(engine.image.points, config)
        self.bands = [deadbands.get(p.name, 0.0) for p in engine.image.points]
        self.alarm_paths = [path for path, _ in engine_alarms(engine)]
        self.frame = SharedFrame(len(engine.image.points), len(self.alarm_paths))
        self.writer = FrameWriter(engine, self.frame, sample_ns=round(config.sample_ms * 1e6))
        self._writer_hook = Handle(lambda: None)  # attached by start()
        self.connected = threading.Event()
        self.restarts = 0
        self.log = structlog.get_logger("vplc.sparkplug").bind(app=engine.app.name, mode="process")
        self._child_stats: dict[str, Any] = {}
        self._proc = None
        self._conn = None
        self._stopping = threading.Event()
        self._link = None
        register_connection(self)

    def connection_status(self) -> dict[str, Any]:
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

    def _spawn(self) -> None:
        # 'spawn', not fork: the scan process has threads (and a fork would copy their locks).
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe()
        engine = self.engine
        init = SparkplugInit(
            config=self.config,
            access=self.access,
            audit_file=self.audit_file,
            bdseq_file=self.bdseq_file,
            shm_name=self.frame.name,
            app_name=engine.app.name,
            app_version=engine.app.manifest.version,
            points=[
                PointInfo(p.name, p.type, p.spec.unit, p.spec.range, p.spec.description)
                for p in engine.image.points
            ],
            kinds=point_kinds(engine),
            deadbands=self.bands,
            n_alarms=len(self.alarm_paths),
            params=[p.spec for p in engine.app.parameters.values()],
            param_values=[p.value for p in engine.app.parameters.values()],
            phase_views=[(probe.state, probe.step) for _, probe in engine_phases(engine)],
            engine_stats=engine.statistics(),
            wall0_ns=self._wall0(),
            log_format=self.log_format,
        )
        self.writer.side.clear()
        self.writer.resend_texts()
        proc = ctx.Process(
            target=child_main, args=(theirs, init), name=f"vplc-sparkplug-{engine.app.name}"
        )
        proc.daemon = True  # terminated at interpreter exit if stop() was skipped
        proc.start()
        theirs.close()  # only the child holds its end: our exit is its EOF, and vice versa
        self._proc, self._conn = proc, mine

    def wait_connected(self, timeout: float) -> bool:
        """True once the child's session is up, False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.wait(0.05):
                return True
        return False

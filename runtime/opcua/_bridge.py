"""The scan-process side of the OPC UA server: the shared frame out, a supervised server process."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from runtime.core._handles import Handle
from runtime.mqtt._process import ProcessBridge
from runtime.mqtt._shm import SharedFrame
from runtime.mqtt._tap import engine_alarms, engine_phases
from runtime.mqtt._writer import FrameWriter, point_kinds
from runtime.opcua._child import child_main
from runtime.opcua._config import OpcuaConfig, default_pki_dir
from runtime.opcua._init import OpcuaInit, PointInfo
from runtime.ops._access import load_access_config

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["OpcuaServer"]


class OpcuaServer(ProcessBridge):
    """An OPC UA server for one engine, in its own process, fed like the MQTT process bridge.

    The scan thread only runs a FrameWriter hook (every ``sample_ms``, values into a seqlocked
    shared-memory block); asyncua, its crypto and its subscriptions run in a spawned child
    with its own GIL. The supervision, the link thread (commands applied between cycles with
    ``engine.submit``, texts and statistics down the pipe) and the restart with backoff are
    the MQTT ProcessBridge's: the two children speak the same pipe protocol.
    """

    child_kind = "opcua"
    config: OpcuaConfig  # type: ignore[assignment]  # the MQTT parent's is an MqttConfig

    def __init__(
        self, engine: ScanEngine, config: OpcuaConfig, *, log_format: str = "console"
    ) -> None:
        # ProcessBridge.__init__ is MQTT's (deadbands, broker transport); only the state its
        # lifecycle methods use is set here.
        self.engine, self.config, self.log_format = engine, config, log_format
        self.access = load_access_config(config.access_file) if config.access_file else None
        self.audit_file = config.audit_file
        self.pki_dir = (config.pki_dir or default_pki_dir()) / engine.app.name
        self.alarm_paths = [path for path, _ in engine_alarms(engine)]
        self.frame = SharedFrame(len(engine.image.points), len(self.alarm_paths))
        self.writer = FrameWriter(engine, self.frame, sample_ns=round(config.sample_ms * 1e6))
        self._writer_hook = Handle(lambda: None)  # attached by start()
        self.connected = threading.Event()
        self.restarts = 0
        self.log = structlog.get_logger("vplc.opcua").bind(app=engine.app.name, mode="process")
        self._child_stats: dict[str, Any] = {}
        self._proc = None
        self._conn = None
        self._stopping = threading.Event()
        self._link = None

    def connection_status(self) -> dict[str, Any]:
        return {
            "who": f"opcua server {self.config.endpoint}",
            "endpoint": self.config.endpoint,
            "connected": self.connected.is_set(),
            "sessions": self._child_stats.get("sessions", 0),
        }

    def _spawn(self) -> None:
        # 'spawn', not fork: the scan process has threads (and a fork would copy their locks).
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe()
        engine = self.engine
        phases = engine_phases(engine)
        init = OpcuaInit(
            config=self.config,
            access=self.access,
            audit_file=self.audit_file,
            pki_dir=self.pki_dir,
            shm_name=self.frame.name,
            app_name=engine.app.name,
            app_version=engine.app.manifest.version,
            points=[
                PointInfo(p.name, p.type, p.spec.unit, p.spec.range, p.spec.description)
                for p in engine.image.points
            ],
            kinds=point_kinds(engine),
            n_alarms=len(self.alarm_paths),
            params=[p.spec for p in engine.app.parameters.values()],
            param_values=[p.value for p in engine.app.parameters.values()],
            phase_paths=[path for path, _ in phases],
            phase_views=[(probe.state, probe.step) for _, probe in phases],
            engine_stats=engine.statistics(),
            wall0_ns=self._wall0(),
            log_format=self.log_format,
        )
        self.writer.side.clear()
        self.writer.resend_texts()
        proc = ctx.Process(
            target=child_main, args=(theirs, init), name=f"vplc-opcua-{engine.app.name}"
        )
        proc.daemon = True  # terminated at interpreter exit if stop() was skipped
        proc.start()
        theirs.close()  # only the child holds its end: our exit is its EOF, and vice versa
        self._proc, self._conn = proc, mine

    def wait_started(self, timeout: float) -> bool:
        """True once the server listens (its first 'conn' message), False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.wait(0.05):
                return True
        return False

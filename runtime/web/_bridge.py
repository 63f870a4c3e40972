"""The scan-process side of the web HMI: the shared frame out, a supervised web server process."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog

from runtime.blocks import PID
from runtime.core._handles import Handle
from runtime.mqtt._process import ProcessBridge
from runtime.mqtt._shm import SharedFrame
from runtime.mqtt._tap import engine_alarms, engine_phases
from runtime.mqtt._writer import FrameWriter, point_kinds
from runtime.ops._access import load_access_config
from runtime.web._child import child_main
from runtime.web._config import WebConfig
from runtime.web._init import LoopInfo, WebInit, WebPoint
from runtime.web._queries import answer_query

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["WebServer", "engine_loops"]


def engine_loops(engine: ScanEngine) -> list[LoopInfo]:
    """Each PID instance with the point or parameter its PV and SP are wired to, and a unit."""
    image, params = engine.image, engine.app.parameters
    loops = []
    for path, pid in engine.app.tree.of_type(PID):
        wires = pid.wired()
        pv, sp = wires.get("PV"), wires.get("SP")
        unit = image[pv].spec.unit if pv is not None and pv in image else ""
        if not unit and sp in params:
            unit = getattr(params[sp].spec, "unit", "") or ""
        loops.append(LoopInfo(path=path, pv=pv, sp=sp, unit=unit))
    return loops


class WebServer(ProcessBridge):
    """The web HMI for one engine, in its own process, fed like the MQTT process bridge.

    The scan thread only runs a FrameWriter hook (every ``sample_ms``, values into a
    seqlocked shared-memory block); uvicorn, Starlette, sessions, JSON and the trend ring
    run in a spawned child with its own GIL. Supervision, the link thread (commands applied
    between cycles) and restart with backoff are the MQTT ProcessBridge's; on top of its pipe
    protocol the child may send ``query`` (block internals, instance tree, histograms),
    answered between cycles like a command.
    """

    child_kind = "web"
    config: WebConfig  # type: ignore[assignment]  # the MQTT parent's is an MqttConfig

    def __init__(
        self,
        engine: ScanEngine,
        config: WebConfig,
        *,
        overview: dict[str, list[str]] | None = None,
        log_format: str = "console",
    ) -> None:
        # ProcessBridge.__init__ is MQTT's (deadbands, broker transport); only the state its
        # lifecycle methods use is set here.
        self.engine, self.config, self.log_format = engine, config, log_format
        self.access = load_access_config(config.access_file) if config.access_file else None
        self.audit_file = config.audit_file
        self.overview = overview or {}
        self.alarm_paths = [path for path, _ in engine_alarms(engine)]
        self.frame = SharedFrame(len(engine.image.points), len(self.alarm_paths))
        self.writer = FrameWriter(engine, self.frame, sample_ns=round(config.sample_ms * 1e6))
        self._writer_hook = Handle(lambda: None)  # attached by start()
        self.connected = threading.Event()
        self.restarts = 0
        self.log = structlog.get_logger("vplc.web").bind(app=engine.app.name, mode="process")
        self._child_stats: dict[str, Any] = {}
        self._proc = None
        self._conn = None
        self._stopping = threading.Event()
        self._link = None
        self.queries = 0

    @property
    def url(self) -> str:
        port = self._child_stats.get("port") or self.config.port
        return self.config.model_copy(update={"port": port}).url

    def connection_status(self) -> dict[str, Any]:
        return {
            "who": f"web HMI {self.url}",
            "endpoint": self.url,
            "connected": self.connected.is_set(),
            "sessions": self._child_stats.get("sessions", 0),
        }

    def _spawn(self) -> None:
        # 'spawn', not fork: the scan process has threads (and a fork would copy their locks).
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe()
        engine = self.engine
        phases = engine_phases(engine)
        init = WebInit(
            config=self.config,
            access=self.access,
            audit_file=self.audit_file,
            shm_name=self.frame.name,
            app_name=engine.app.name,
            app_version=engine.app.manifest.version,
            points=[
                WebPoint(
                    p.name,
                    p.type.value,
                    p.spec.direction,
                    p.spec.unit,
                    p.spec.range,
                    p.spec.description,
                )
                for p in engine.image.points
            ],
            kinds=point_kinds(engine),
            alarm_paths=self.alarm_paths,
            params=[p.spec for p in engine.app.parameters.values()],
            param_values=[p.value for p in engine.app.parameters.values()],
            phase_paths=[path for path, _ in phases],
            phase_views=[(probe.state, probe.step) for _, probe in phases],
            loops=engine_loops(engine),
            tasks=[t.name for t in engine.tasks],
            engine_stats=engine.statistics(),
            wall0_ns=self._wall0(),
            overview=self.overview,
            log_format=self.log_format,
        )
        self.writer.side.clear()
        self.writer.resend_texts()
        name = f"vplc-web-{engine.app.name}"
        proc = ctx.Process(target=child_main, args=(theirs, init), name=name)
        proc.daemon = True  # terminated at interpreter exit if stop() was skipped
        proc.start()
        theirs.close()  # only the child holds its end: our exit is its EOF, and vice versa
        self._proc, self._conn = proc, mine

    def _handle(self, msg: tuple[Any, ...]) -> None:
        if msg[0] == "query":
            _, req, body = msg
            assert self._conn is not None
            self.queries += 1
            answer = answer_query(self.engine, body, timeout_s=self.config.command_timeout_s)
            self._conn.send(("resp", req, answer))
            return
        super()._handle(msg)

    def wait_started(self, timeout: float) -> bool:
        """True once the server listens (its first 'conn' message), False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected.wait(0.05):
                return True
        return False

"""The out-of-process MQTT bridge: shared memory out of the scan, a supervised child for MQTT."""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hal.mqtt import check_transport, register_connection
from runtime.core._handles import Handle
from runtime.mqtt._bridge import check_deadbands, resolve_deadbands
from runtime.mqtt._child import ChildInit, child_main
from runtime.mqtt._config import MqttConfig
from runtime.mqtt._instance import Instance
from runtime.mqtt._payloads import birth_payload
from runtime.mqtt._shm import SharedFrame
from runtime.mqtt._tap import engine_alarms, engine_phases
from runtime.mqtt._writer import FrameWriter, point_kinds
from runtime.ops._access import AccessConfig, load_access_config
from runtime.ops._command_handler import _ADAPTER
from runtime.ops._commands import CommandResponse, apply_command

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["ProcessBridge"]

_POLL_S = 0.02  # how often the link thread looks at the pipe and the text side channel
_RESTART_MIN_S, _RESTART_MAX_S = 0.5, 30.0
_HEALTHY_S = 30.0  # a child that ran this long resets the restart backoff


class ProcessBridge:
    """MqttBridge's behaviour with the network in a child process (``process: true``).

    The scan thread only runs a FrameWriter hook (values into a seqlocked shared-memory
    block); MQTT, JSON and TLS run in a spawned child that holds its own GIL. A link thread
    here applies the child's authorized commands with ``engine.submit`` (between cycles),
    sends texts and engine statistics, and restarts a child that died, with backoff.
    """

    # The prefix of the supervision's log events; the OPC UA server reuses this supervision.
    child_kind = "mqtt"

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
        self.engine, self.config, self.log_format = engine, config, log_format
        if access is None and config.access_file is not None:
            access = load_access_config(config.access_file)
        if access is not None:  # refused here, not only in the child: the caller sees why
            check_transport(config, secrets="command tokens (access configuration)")
        self.access = access
        self.instance = instance or Instance()
        self.deadbands = resolve_deadbands(engine.image.points, config)
        self.audit_file = audit_file if audit_file is not None else config.audit_file
        self.alarm_paths = [path for path, _ in engine_alarms(engine)]
        self.frame = SharedFrame(len(engine.image.points), len(self.alarm_paths))
        self.writer = FrameWriter(engine, self.frame, sample_ns=round(config.sample_ms * 1e6))
        self._writer_hook = Handle(lambda: None)  # attached by start()
        self.connected = threading.Event()
        self.restarts = 0
        self.log = structlog.get_logger("vplc.mqtt").bind(app=engine.app.name, mode="process")
        self._child_stats: dict[str, Any] = {}
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._stopping = threading.Event()
        self._link: threading.Thread | None = None
        register_connection(self)

    @property
    def child_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Attach the writer, spawn the child and the link thread; returns at once."""
        if self._link is not None:
            return
        self._writer_hook = self.engine.add_cycle_hook(self.writer)
        self._spawn()
        self._link = threading.Thread(
            target=self._run_link, name=f"mqtt-link-{self.engine.app.name}", daemon=True
        )
        self._link.start()

    def stop(self, timeout: float = 5.0) -> None:
        """The child publishes the last values and 'offline', then exits; detach, unlink."""
        if self._link is None:
            return
        self._stopping.set()
        self._link.join(timeout)
        self._link = None
        proc, conn = self._proc, self._conn
        if not self.engine.running:
            self.writer.write(self.engine.now_ns)  # the safe outputs, for the goodbye
        if conn is not None:
            deadline = time.monotonic() + timeout
            try:
                side = self.writer.side
                while side:
                    conn.send(("text", *side.popleft()))
                conn.send(("stop",))
                while proc is not None and time.monotonic() < deadline:
                    if conn.poll(0.05):
                        self._handle(conn.recv())  # its final statistics; EOF when it exits
                    elif not proc.is_alive():
                        break
            except (EOFError, OSError):
                pass
        if proc is not None:
            proc.join(timeout)
            if proc.is_alive():
                self.log.warning(f"{self.child_kind}_child_kill", pid=proc.pid)
                proc.kill()
                proc.join(1)
        if conn is not None:
            conn.close()
        self.connected.clear()
        self._writer_hook.remove()
        self.frame.close()

    def statistics(self) -> dict[str, Any]:
        proc = self._proc
        return {
            **self._child_stats,
            "connected": self.connected.is_set(),
            "process": {
                "pid": proc.pid if proc else None,
                "alive": bool(proc and proc.is_alive()),
                "restarts": self.restarts,
            },
            "writer": self.writer.statistics(),
        }

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

    # ------------------------------------------------------------------ the child
    def _wall0(self) -> int:
        engine = self.engine
        return time.time_ns() - (engine.clock.now_ns() - engine.epoch_ns)

    def _spawn(self) -> None:
        # 'spawn', not fork: the scan process has threads (and a fork would copy their locks).
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe()
        engine = self.engine
        points = engine.image.points
        phases = engine_phases(engine)
        init = ChildInit(
            config=self.config,
            access=self.access,
            audit_file=self.audit_file,
            shm_name=self.frame.name,
            app_name=engine.app.name,
            names=[p.name for p in points],
            types=[p.type for p in points],
            kinds=point_kinds(engine),
            alarm_paths=self.alarm_paths,
            param_names=list(engine.app.parameters),
            param_values=[p.value for p in engine.app.parameters.values()],
            phase_paths=[path for path, _ in phases],
            phase_views=[(probe.state, probe.step) for _, probe in phases],
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
        self.writer.side.clear()
        self.writer.resend_texts()
        proc = ctx.Process(
            target=child_main, args=(theirs, init), name=f"vplc-mqtt-{engine.app.name}"
        )
        # daemon: multiprocessing terminates it at interpreter exit if stop() was skipped.
        proc.daemon = True
        proc.start()
        theirs.close()  # only the child holds its end: our exit is its EOF, and vice versa
        self._proc, self._conn = proc, mine

    def _run_link(self) -> None:
        backoff = _RESTART_MIN_S
        started = time.monotonic()
        next_stats = 0.0
        while not self._stopping.is_set():
            proc, conn = self._proc, self._conn
            if proc is None or conn is None or not proc.is_alive():
                self.connected.clear()
                exitcode = proc.exitcode if proc is not None else None
                if time.monotonic() - started > _HEALTHY_S:
                    backoff = _RESTART_MIN_S
                self.log.error(
                    f"{self.child_kind}_child_died", exitcode=exitcode, restart_in_s=backoff
                )
                if conn is not None:
                    conn.close()
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, _RESTART_MAX_S)
                self.restarts += 1
                self._spawn()
                started = time.monotonic()
                self.log.warning(
                    f"{self.child_kind}_child_restarted", pid=self.child_pid, restarts=self.restarts
                )
                continue
            try:
                timeout = _POLL_S
                while conn.poll(timeout):
                    self._handle(conn.recv())
                    timeout = 0
                side = self.writer.side
                while side:
                    conn.send(("text", *side.popleft()))
                now = time.monotonic()
                if now >= next_stats:
                    next_stats = now + self.config.stats_s
                    conn.send(("stats", self.engine.statistics(), self._wall0()))
            except (EOFError, OSError):
                # Broken pipe: the child is dying; the next turn restarts it once it is gone.
                proc.join(1)
                if proc.is_alive():
                    proc.kill()
                    proc.join(1)

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "cmd":
            _, req, body = msg
            assert self._conn is not None
            self._conn.send(("resp", req, self._apply(body).model_dump(mode="json")))
        elif kind == "conn":
            if msg[1]:
                self.connected.set()
            else:
                self.connected.clear()
        elif kind == "bstats":
            self._child_stats = msg[1]

    def _apply(self, body: dict[str, Any]) -> CommandResponse:
        """Apply a command the child already authorized (and audits): between two cycles."""
        try:
            # Validated again here: the pipe is a boundary, and models are rebuilt from JSON.
            cmd = _ADAPTER.validate_python(body)
        except Exception as exc:
            return CommandResponse(id=body.get("id"), status="refused", reason=f"bad: {exc}")
        return apply_command(self.engine, cmd, timeout_s=self.config.command_timeout_s)

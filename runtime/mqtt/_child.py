"""The child process of the out-of-process bridge: BridgeCore over a shared-memory mirror."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hal import IecType, Quality
from runtime.core._logging import configure_logging
from runtime.front import ALARM_FIELDS, STATES, ChildLink, Frame, SharedFrame
from runtime.mqtt._config import MqttConfig
from runtime.mqtt._core import BridgeCore
from runtime.mqtt._instance import Instance
from runtime.mqtt._payloads import iso
from runtime.mqtt._tap import TelemetryTap
from runtime.ops._access import AccessConfig
from runtime.ops._audit import AuditLog
from runtime.ops._command_handler import CommandHandler

__all__ = ["ChildInit", "child_main"]

_STATS_TO_PARENT_S = 0.5  # how fresh ProcessBridge.statistics() is in the scan process
_ALARM_ATTRS = [
    "ACTIVE",
    "UNACKED",
    "SEVERITY",
    "HH_ACTIVE",
    "H_ACTIVE",
    "L_ACTIVE",
    "LL_ACTIVE",
    "BAD_ACTIVE",
]
_QUALITY = {q.value: q for q in Quality}  # the enum members: the tap compares them by identity


@dataclass
class ChildInit:
    """Everything the child needs, pickled once at spawn (never per cycle)."""

    config: MqttConfig
    access: AccessConfig | None
    audit_file: Path | None
    shm_name: str
    app_name: str
    names: list[str]
    types: list[IecType]
    kinds: list[str]
    alarm_paths: list[str]
    param_names: list[str]
    param_values: list[Any]
    phase_paths: list[str]
    phase_views: list[tuple[Any, Any]]
    deadbands: dict[str, float]
    resolutions: list[float | None]
    instance: Instance
    birth: dict[str, Any]
    engine_stats: dict[str, Any]
    wall0_ns: int
    log_format: str = "console"
    parent_pid: int = field(default_factory=os.getpid)


class _PointMirror:
    __slots__ = ("forced", "name", "quality", "type", "value")

    def __init__(self, name: str, type_: IecType) -> None:
        self.name, self.type = name, type_
        self.value: Any = None
        self.quality: Any = None
        self.forced = False


class _ValueMirror:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _PhaseMirror:
    __slots__ = ("state", "step")

    def __init__(self, state: Any, step: Any) -> None:
        self.state, self.step = state, step


class _AlarmMirror:
    def __init__(self) -> None:
        for attr in _ALARM_ATTRS:
            setattr(self, attr, None)
        self.TEXT = ""


class ChildBridge(BridgeCore):
    """Samples the shared frame at ``sample_ms`` into a TelemetryTap over mirrors and runs
    the same network code as the in-process bridge; commands go to the parent by pipe."""

    def __init__(self, conn: Connection, init: ChildInit, frame: SharedFrame) -> None:
        self.init, self.frame = init, frame
        self.points = [_PointMirror(n, t) for n, t in zip(init.names, init.types, strict=True)]
        self.alarm_mirrors = [_AlarmMirror() for _ in init.alarm_paths]
        # Filled at spawn, then kept current by the parent's texts over the pipe.
        self.param_mirrors = [_ValueMirror(v) for v in init.param_values]
        self.phase_mirrors = [_PhaseMirror(*view) for view in init.phase_views]
        self.state_code = 1
        self.reason = ""
        self.frame_seen = -1
        cfg = init.config
        self.link = ChildLink(
            conn,
            timeout_s=cfg.command_timeout_s,
            engine_stats=init.engine_stats,
            wall0_ns=init.wall0_ns,
            on_text=self._text,
        )
        self.done = self.link.done
        tap = TelemetryTap(
            self.points,
            list(zip(init.alarm_paths, self.alarm_mirrors, strict=True)),
            lambda: (STATES[self.state_code], self.reason),
            deadbands=init.deadbands,
            sample_ns=0,
            capacity=cfg.queue_size,
            params=list(zip(init.param_names, self.param_mirrors, strict=True)),
            phases=list(zip(init.phase_paths, self.phase_mirrors, strict=True)),
        )
        audit = AuditLog(init.audit_file) if init.audit_file is not None else None
        prefix = f"vplc/{cfg.site}/{cfg.node}/{init.app_name}"
        handler = CommandHandler(
            None,
            access=init.access,
            audit=audit,
            timeout_s=cfg.command_timeout_s,
            max_bytes=cfg.max_command_bytes,
            source=f"mqtt:{prefix}/cmd",
            app=init.app_name,
            apply=self.link.remote_apply,
        )
        super().__init__(
            cfg,
            app_name=init.app_name,
            tap=tap,
            handler=handler,
            audit=audit,
            instance=init.instance,
            resolutions=init.resolutions,
        )

    # ------------------------------------------------------------------ BridgeCore hooks
    def _birth(self, wall_ns: int) -> dict[str, Any]:
        return self.init.birth | {"ts": iso(wall_ns)}

    def _engine_statistics(self) -> dict[str, Any]:
        return self.link.engine_stats

    def _wall0_ns(self) -> int:
        return self.link.wall0_ns

    def _connection_changed(self, up: bool) -> None:
        self.send(("conn", up))

    def statistics(self) -> dict[str, Any]:
        return super().statistics() | {
            "child": {"pid": os.getpid(), "frame_seq": self.frame.last_seq},
            "frame_read_retries": self.frame.retries,
        }

    # ------------------------------------------------------------------ pipe
    def send(self, msg: tuple[Any, ...]) -> None:
        self.link.send(msg)

    def _text(self, what: str, idx: int, value: Any) -> None:
        if what == "point":
            self.points[idx].value = value
        elif what == "alarm":
            self.alarm_mirrors[idx].TEXT = value
        elif what == "param":
            self.param_mirrors[idx].value = value
        elif what == "phase":
            self.phase_mirrors[idx].state, self.phase_mirrors[idx].step = value
        else:
            self.reason = value

    # ------------------------------------------------------------------ sampling
    def sample_once(self) -> None:
        frame = self.frame.read()
        if frame is None or (frame.seq == self.frame_seen and not self.tap.refresh_requested):
            return
        self.frame_seen = frame.seq
        self._mirror(frame)
        self.tap.sample(frame.now_ns)

    def _mirror(self, frame: Frame) -> None:
        kinds, by_code = self.init.kinds, _QUALITY
        for i, p in enumerate(self.points):
            kind = kinds[i]
            if kind == "f":
                p.value = frame.floats[i]
            elif kind == "i":
                p.value = frame.ints[i]
            elif kind == "b":
                p.value = bool(frame.ints[i])
            p.quality = by_code.get(frame.quality[i], Quality.BAD)
            p.forced = bool(frame.forced[i])
        for j, mirror in enumerate(self.alarm_mirrors):
            fields = frame.alarms[j * ALARM_FIELDS : (j + 1) * ALARM_FIELDS]
            for attr, value in zip(_ALARM_ATTRS, fields, strict=True):
                setattr(mirror, attr, value if attr == "SEVERITY" else bool(value))
        self.state_code = frame.state if frame.state < len(STATES) else 2

    def _sampler(self) -> None:
        period = self.config.sample_ms / 1000
        while not self.done.wait(period):
            self.sample_once()


def child_main(conn: Connection, init: ChildInit) -> None:
    """Entry point of the spawned child; returns when the parent says stop or is gone."""
    # Ctrl-C reaches the whole process group: the parent decides when the bridge stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging("json" if init.log_format == "json" else "console")
    frame = SharedFrame(len(init.names), len(init.alarm_paths), name=init.shm_name)
    bridge = ChildBridge(conn, init, frame)
    bridge.link.start("mqtt-pipe")
    sampler = threading.Thread(target=bridge._sampler, name="mqtt-sample", daemon=True)
    sampler.start()
    bridge.start_loop(f"mqtt-{init.app_name}")
    while not bridge.done.wait(_STATS_TO_PARENT_S):
        if os.getppid() != init.parent_pid:  # reparented: the parent died without EOF
            bridge.goodbye_reason = "scan process exited"
            break
        bridge.send(("bstats", bridge.statistics()))
    if bridge.link.eof:
        bridge.goodbye_reason = "scan process exited"
    bridge.done.set()
    sampler.join()
    bridge.sample_once()  # the last values before "offline"
    bridge.stop_loop()
    bridge.send(("bstats", bridge.statistics()))
    frame.close()

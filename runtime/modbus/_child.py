"""The Modbus server's process: the register map served from the shared frame, writes by pipe."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog

from hal.modbus import ModbusTcpServer, ServerLimits
from runtime.core._logging import configure_logging
from runtime.core.manifest import ParameterSpec
from runtime.front import ChildLink, SharedFrame
from runtime.modbus._bank import MapBank
from runtime.modbus._config import ModbusServerConfig
from runtime.ops._audit import AuditLog

__all__ = ["ModbusInit", "child_main"]

_STATS_TO_PARENT_S = 0.5
_log = structlog.get_logger("vplc.modbus")


@dataclass
class ModbusInit:
    """Everything the server process needs, pickled once at spawn."""

    config: ModbusServerConfig
    audit_file: Path | None
    shm_name: str
    n_points: int
    n_alarms: int
    app_name: str
    # Per map entry: ("point", frame slot, kind 'f'/'i'/'b') or ("param", parameter index, "").
    slots: list[tuple[str, int, str]]
    params: dict[str, ParameterSpec]
    param_values: list[Any]
    log_format: str = "console"
    parent_pid: int = field(default_factory=os.getpid)


class _Sampler:
    """Every ``sample_ms``, the map's values from the frame (and parameters from the pipe).

    The parameters are the link's copy: an accepted write's value is in it before the write
    returns, and no older text from the pipe can bring the value before it back."""

    def __init__(self, init: ModbusInit, frame: SharedFrame, link: ChildLink) -> None:
        self.init, self.frame, self.link = init, frame, link
        self.seen = -1

    def values(self, current: list[Any]) -> list[Any]:
        frame = self.frame.read()
        if frame is None:
            return current
        self.seen = frame.seq
        params = self.link.param_values
        out: list[Any] = []
        for what, idx, kind in self.init.slots:
            if what == "param":
                out.append(params[idx])
            elif kind == "f":
                out.append(frame.floats[idx])
            elif kind == "b":
                out.append(bool(frame.ints[idx]))
            else:
                out.append(frame.ints[idx])
        return out


async def _serve(conn: Connection, init: ModbusInit) -> None:
    cfg = init.config
    link = ChildLink(conn, timeout_s=cfg.command_timeout_s, param_values=init.param_values)
    link.start("modbus-pipe")
    frame = SharedFrame(init.n_points, init.n_alarms, name=init.shm_name)
    sampler = _Sampler(init, frame, link)
    audit_file = init.audit_file
    server: ModbusTcpServer | None = None

    bank = MapBank(
        cfg, init.params, sampler.values([None] * len(init.slots)),
        apply=link.remote_apply, audit=AuditLog(audit_file) if audit_file else None,
        app_name=init.app_name, source=f"modbus:{cfg.host}:{cfg.port}",
    )  # fmt: skip
    server = ModbusTcpServer(
        bank, host=cfg.host, port=cfg.port,
        limits=ServerLimits(max_connections=cfg.max_connections,
                            idle_timeout_s=cfg.idle_timeout_s),
    )  # fmt: skip
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve(stop))
    while not server.ready.is_set() and not serving.done():
        await asyncio.sleep(0.01)
    if serving.done():
        serving.result()  # the bind failed: the traceback is the child's exit reason
    _log.info("modbus_server_listening", host=cfg.host, port=server.port,
              writes=cfg.writes.enabled, pid=os.getpid())  # fmt: skip
    link.send(("conn", True))
    period = cfg.sample_ms / 1000
    next_stats = 0.0
    loop = asyncio.get_running_loop()
    while not link.done.is_set():
        bank.refresh(sampler.values)
        if loop.time() >= next_stats:
            next_stats = loop.time() + _STATS_TO_PARENT_S
            if os.getppid() != init.parent_pid:  # reparented: the parent died without EOF
                break
            link.send(("bstats", server.statistics() | _writes(bank) | {"frame_seq": sampler.seen}))
        await asyncio.sleep(period)
    stop.set()
    await serving
    link.send(("conn", False))
    link.send(("bstats", server.statistics() | _writes(bank)))
    frame.close()


def _writes(bank: MapBank) -> dict[str, Any]:
    return {"writes_" + k: v for k, v in bank.counts.items()}


def child_main(conn: Connection, init: ModbusInit) -> None:
    """Entry point of the spawned server process; returns when the parent says stop or dies."""
    # Ctrl-C reaches the whole process group: the parent decides when the server stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging("json" if init.log_format == "json" else "console")
    threading.current_thread().name = f"modbus-{init.app_name}"
    asyncio.run(_serve(conn, init))

"""The Modbus server's process: the register map served from the shared frame, writes by pipe."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
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
    param_index: dict[str, int]
    param_values: list[Any]
    log_format: str = "console"
    parent_pid: int = field(default_factory=os.getpid)


_PIN_S = 2.0  # how long an accepted write's value outranks the pipe's older texts


class _Sampler:
    """Every ``sample_ms``, the map's values from the frame (and parameters from the pipe)."""

    def __init__(self, init: ModbusInit, frame: SharedFrame, link: ChildLink) -> None:
        self.init, self.frame, self.link = init, frame, link
        self.seen = -1
        # parameter index → (value a write here set, until when): the pipe may still deliver
        # a text of the value before it (sent before the scan applied the write); served
        # values keep the written one until the scan's own text of it arrives.
        self.pinned: dict[int, tuple[Any, float]] = {}

    def pin(self, idx: int, value: Any) -> None:
        self.pinned[idx] = (value, time.monotonic() + _PIN_S)

    def _param(self, params: list[Any], idx: int) -> Any:
        value = params[idx]
        pin = self.pinned.get(idx)
        if pin is None:
            return value
        if value == pin[0] or time.monotonic() > pin[1]:
            del self.pinned[idx]  # the scan's text caught up (or a newer change came since)
            return value
        return pin[0]

    def values(self, current: list[Any]) -> list[Any]:
        frame = self.frame.read()
        if frame is None:
            return current
        self.seen = frame.seq
        params = self.link.param_values
        out: list[Any] = []
        for what, idx, kind in self.init.slots:
            if what == "param":
                out.append(self._param(params, idx))
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

    def accepted(name: str, new: Any) -> None:  # under the bank's lock, as samples are
        idx = init.param_index[name]
        link.param_values[idx] = new
        sampler.pin(idx, new)

    bank = MapBank(
        cfg, init.params, sampler.values([None] * len(init.slots)),
        apply=link.remote_apply, audit=AuditLog(audit_file) if audit_file else None,
        app_name=init.app_name, source=f"modbus:{cfg.host}:{cfg.port}", on_accepted=accepted,
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

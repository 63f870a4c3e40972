"""The web HMI process: uvicorn + Starlette over the shared frame, commands to the scan by pipe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import structlog
import uvicorn

from runtime.core._logging import configure_logging
from runtime.front import ChildLink, SharedFrame
from runtime.ops._audit import AuditLog
from runtime.ops._command_handler import CommandHandler
from runtime.web._app import build_app
from runtime.web._context import WebContext
from runtime.web._hub import Hub
from runtime.web._init import WebInit
from runtime.web._sessions import SessionStore
from runtime.web._writes import WebCommands

__all__ = ["Pacer", "child_main", "listen_socket"]

_STATS_TO_PARENT_S = 0.5
_POLL_S = 0.01  # how often the frame's counter is looked at: the most a new frame waits here
_MIN_GAP = 0.75  # × sample period: the closest two frame-driven messages may follow
_log = structlog.get_logger("vplc.web")


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the scan process decides when the HMI stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port fails at once (and port 0 works)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _context(init: WebInit, link: ChildLink, frame: SharedFrame) -> WebContext:
    cfg = init.config
    audit = AuditLog(init.audit_file) if init.audit_file is not None else None
    handler = CommandHandler(
        None,
        access=init.access,
        audit=audit,
        timeout_s=cfg.command_timeout_s,
        source=f"web:{cfg.host}:{cfg.port}",
        app=init.app_name,
        apply=link.remote_apply,
    )
    sessions = SessionStore(
        init.access,
        idle_s=cfg.session_idle_s,
        max_sessions=cfg.session_max,
        failures=cfg.login_failures,
        lockout_s=cfg.login_lockout_s,
    )
    return WebContext(
        init=init,
        hub=Hub(frame, link, init),
        link=link,
        sessions=sessions,
        commands=WebCommands(
            handler, access=init.access, params=init.params, critical=init.critical
        ),
    )


class Pacer:
    """When the web process samples the frame: a new frame at once, otherwise every period.

    The scan writes a frame at most every ``period`` (the feed's sample period) but at its
    own cycles' phase. Sampling blindly every ``period`` would add a second, unrelated wait
    of up to one period (≈ period/2 on average) between the frame and the browser; instead
    the frame's counter is looked at every ``_POLL_S`` (one 8-byte load) and a new frame is
    sampled at once, so the browsers see it within ``_POLL_S``. A new frame sooner than
    ``_MIN_GAP`` × period after the last one sampled (another reader made the scan write
    faster) waits: the browsers get about one message per period at most, as configured.
    Texts, parameters, phases (by pipe) and the runtime status are looked at every period.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self.next_sample = self.last_frame = -math.inf

    def due(self, now: float, new_frame: bool) -> bool:
        fresh = new_frame and now - self.last_frame >= _MIN_GAP * self.period
        if not fresh and now < self.next_sample:
            return False
        self.next_sample = now + self.period
        if fresh:
            self.last_frame = now
        return True


async def _sample(ctx: WebContext, period: float) -> None:
    """Frame → browsers as the Pacer says; statistics to the parent every 0.5 s."""
    hub, pacer = ctx.hub, Pacer(period)
    poll = min(period, _POLL_S)
    next_stats = 0.0
    port = ctx.init.config.port
    while not ctx.link.done.is_set():
        now = time.monotonic()
        if pacer.due(now, hub.frame_is_new()):
            _sample_once(hub)
        if now >= next_stats:
            next_stats = now + _STATS_TO_PARENT_S
            if os.getppid() != ctx.init.parent_pid:  # reparented: the parent died without EOF
                break
            ctx.link.send(("bstats", _statistics(ctx, port)))
        await asyncio.sleep(poll)


def _sample_once(hub: Hub) -> None:
    try:
        message = hub.sample()
        if message is not None:
            hub.publish(message)
    except Exception as exc:  # the pages must stay up; say it once per occurrence
        _log.error("web_sample_failed", error=repr(exc))


def _statistics(ctx: WebContext, port: int) -> dict[str, Any]:
    return {
        "child": {"pid": os.getpid()},
        "port": port,
        "hub": ctx.hub.statistics(),
        "queries": ctx.queries.statistics(),
        "commands": ctx.commands.handler.statistics(),
        "sessions": len(ctx.sessions),
        "logins": ctx.sessions.logins,
        "logins_refused": ctx.sessions.refused,
    }


async def _serve(conn: Connection, init: WebInit) -> None:
    cfg = init.config
    link = ChildLink.for_init(conn, init, timeout_s=cfg.command_timeout_s)
    link.start("web-pipe")
    frame = SharedFrame(len(init.points), init.n_alarms, name=init.shm_name)
    sock = listen_socket(cfg.host, cfg.port)
    port = sock.getsockname()[1]
    init.config = cfg = cfg.model_copy(update={"port": port})
    ctx = _context(init, link, frame)
    server = _Server(
        uvicorn.Config(
            build_app(ctx),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=str(cfg.tls_cert) if cfg.tls_cert else None,
            ssl_keyfile=str(cfg.tls_key) if cfg.tls_key else None,
            timeout_graceful_shutdown=1,
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if serving.done():
        serving.result()  # raises what stopped it
    _log.info("web_hmi_started", url=cfg.url, tls=cfg.tls, logins=init.access is not None)
    link.send(("bstats", _statistics(ctx, port)))
    link.send(("conn", True))
    try:
        await _sample(ctx, cfg.sample_ms / 1000)
        ctx.hub.sample()  # the last values (the safe outputs after a stop)
    finally:
        server.should_exit = True
        await serving
        ctx.commands.handler.close()
        link.send(("conn", False))
        link.send(("bstats", _statistics(ctx, port)))
        frame.close()


def child_main(conn: Connection, init: WebInit) -> None:
    """Entry point of the spawned web process; returns when the parent says stop or dies."""
    # Ctrl-C reaches the whole process group: the parent decides when the server stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging("json" if init.log_format == "json" else "console")
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    asyncio.run(_serve(conn, init))

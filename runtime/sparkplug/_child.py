"""The edge node process: hal.mqtt's session over the shared frame, commands to the scan by pipe."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from multiprocessing.connection import Connection
from typing import Any

import structlog

from hal.mqtt import MqttSession
from runtime.core._logging import configure_logging
from runtime.front import ChildLink, SharedFrame
from runtime.ops._audit import AuditLog
from runtime.ops._command_handler import CommandHandler
from runtime.sparkplug._commands import DeviceCommands, unsigned_apply
from runtime.sparkplug._init import SparkplugInit, device_metrics
from runtime.sparkplug._node import EdgeNode

__all__ = ["child_main"]

_STATS_TO_PARENT_S = 0.5


async def _serve(conn: Connection, init: SparkplugInit) -> None:
    cfg, sp = init.config, init.sparkplug
    link = ChildLink.for_init(conn, init, timeout_s=cfg.command_timeout_s)
    link.start("sparkplug-pipe")
    frame = SharedFrame(len(init.points), init.n_alarms, name=init.shm_name)
    audit = AuditLog(init.audit_file) if init.audit_file is not None else None
    metrics = device_metrics(init)
    node_name = f"spBv1.0/{sp.group_id}/{sp.edge_node_id}"
    handler = CommandHandler(
        None,
        access=init.access,
        audit=audit,
        timeout_s=cfg.command_timeout_s,
        max_bytes=cfg.max_command_bytes,
        source=f"sparkplug:{node_name}/{init.device_id}",
        app=init.app_name,
        apply=unsigned_apply(link.remote_apply),
    )
    node = EdgeNode(
        init,
        link,
        frame,
        DeviceCommands(handler, metrics, init.params, user=sp.command_user),
        metrics,
    )
    log = structlog.get_logger("vplc.sparkplug").bind(app=init.app_name)
    session = MqttSession(
        cfg,
        node,
        client_id=cfg.client_id or f"vplc-spb-{sp.group_id}-{sp.edge_node_id}"[:128],
        name=f"sparkplug {node_name}",
        will=node.will(),
        subscriptions=node.subscriptions(),
        log=log,
    )
    node.session = session
    stop = asyncio.Event()
    running = asyncio.create_task(session.run(stop))
    try:
        while not link.done.is_set() and not running.done():
            await asyncio.sleep(_STATS_TO_PARENT_S)
            if os.getppid() != init.parent_pid:  # reparented: the parent died without EOF
                break
            link.send(("bstats", _statistics(node, session, handler)))
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 10)
        node.close()
        handler.close()
        link.send(("conn", False))
        link.send(("bstats", _statistics(node, session, handler)))
        frame.close()


def _statistics(node: EdgeNode, session: MqttSession, handler: CommandHandler) -> dict[str, Any]:
    return {
        "child": {"pid": os.getpid()},
        "sparkplug": node.statistics(),
        "commands": handler.statistics(),
        "connection": session.connection_status(),
    }


def child_main(conn: Connection, init: SparkplugInit) -> None:
    """Entry point of the spawned edge node process; returns when the parent says stop or dies."""
    # Ctrl-C reaches the whole process group: the parent decides when the node stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging("json" if init.log_format == "json" else "console")
    asyncio.run(_serve(conn, init))

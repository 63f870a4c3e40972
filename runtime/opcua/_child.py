"""The OPC UA server process: asyncua over the shared frame, commands to the scan by pipe."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

import structlog
from asyncua import Server, ua
from asyncua.common.connection import TransportLimits
from asyncua.server.internal_session import InternalSession

from runtime.core._logging import configure_logging
from runtime.front import ChildLink, SharedFrame
from runtime.opcua._config import OpcuaConfig
from runtime.opcua._gateway import CommandGateway
from runtime.opcua._init import OpcuaInit
from runtime.opcua._limits import SessionLimits, publish_capabilities
from runtime.opcua._pki import ensure_certificate
from runtime.opcua._programs import ProgramValues
from runtime.opcua._sampler import Sampler
from runtime.opcua._session import AccessUserManager, VplcInternalServer
from runtime.opcua._space import build_space
from runtime.opcua._trust import TrustList
from runtime.ops._audit import AuditLog
from runtime.ops._command_handler import CommandHandler

__all__ = ["application_uri", "child_main", "namespace_uri"]

_STATS_TO_PARENT_S = 0.5
_POLICIES = {
    "Basic256Sha256": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    "Aes128_Sha256_RsaOaep": ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    "Aes256_Sha256_RsaPss": ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
    "None": ua.SecurityPolicyType.NoSecurity,
}
_log = structlog.get_logger("vplc.opcua")


def namespace_uri(config: OpcuaConfig, app_name: str) -> str:
    return config.namespace_uri or f"urn:vplc:{app_name}"


def application_uri(app_name: str) -> str:
    """The server's ApplicationUri; it is also in its certificate's subjectAltName."""
    return f"urn:vplc:{socket.gethostname()}:{app_name}"


async def _make_server(init: OpcuaInit, handler: CommandHandler) -> Server:
    cfg = init.config
    iserver = VplcInternalServer(
        user_manager=AccessUserManager(init.access, anonymous=cfg.anonymous)
    )
    # ConditionRefresh (and RefreshStart/End events): a SCADA client that subscribes to the
    # alarms gets the retained conditions (active or unacknowledged) at once.
    iserver.bind_condition_methods = True
    server = Server(iserver=iserver)
    chunk = server.limits.max_recv_buffer  # a hostile client's huge message ends here
    server.limits = TransportLimits(
        max_recv_buffer=chunk,
        max_send_buffer=server.limits.max_send_buffer,
        max_chunk_count=-(-cfg.max_message_bytes // chunk),
        max_message_size=cfg.max_message_bytes,
    )
    await server.init()
    server.set_endpoint(cfg.endpoint)
    server.set_server_name(f"vplc {init.app_name}")
    server.product_uri = "urn:vplc"
    server.manufacturer_name = "vplc"
    server.application_type = ua.ApplicationType.Server
    app_uri = application_uri(init.app_name)
    await server.set_application_uri(app_uri)
    certs = ensure_certificate(init.pki_dir, app_uri=app_uri, app_name=init.app_name)
    await server.load_certificate(str(certs.cert))
    await server.load_private_key(str(certs.key))
    server.set_security_policy([_POLICIES[p] for p in cfg.security_policies])
    if not cfg.trust_all_clients:
        server.set_certificate_validator(TrustList(certs.trusted, certs.rejected))
    tokens: list[type] = [ua.UserNameIdentityToken]
    if cfg.anonymous:
        tokens.append(ua.AnonymousIdentityToken)
    server.set_identity_tokens(tokens)
    InternalSession.max_connections = cfg.max_sessions
    iserver.vplc_limits = SessionLimits.from_config(cfg)
    # asyncua's own server-wide caps, from the per-session ones (its defaults would refuse
    # before ours: 1,000 subscriptions in all; 10,000 values queued per item).
    iserver.max_subscriptions = cfg.max_sessions * cfg.max_subscriptions_per_session
    iserver.max_monitored_item_queue_size = cfg.max_queue_size
    await publish_capabilities(server, cfg)
    idx = await server.register_namespace(namespace_uri(cfg, init.app_name))
    space = await build_space(server, init, idx)
    iserver.vplc_space = space
    iserver.vplc_gateway = CommandGateway(
        handler, access=init.access, params=init.params, source=cfg.endpoint
    )
    return server


async def _serve(conn: Connection, init: OpcuaInit) -> None:
    cfg = init.config
    programs = ProgramValues()
    link = ChildLink.for_init(conn, init, timeout_s=cfg.command_timeout_s, on_text=programs.on_text)
    programs.fallback = link._keep_text  # every other text lands where the link keeps it
    link.start("opcua-pipe")
    frame = SharedFrame(len(init.points), init.n_alarms, name=init.shm_name)
    audit = AuditLog(init.audit_file) if init.audit_file is not None else None
    handler = CommandHandler(
        None,
        access=init.access,
        audit=audit,
        timeout_s=cfg.command_timeout_s,
        source=f"opcua:{cfg.endpoint}",
        app=init.app_name,
        apply=link.remote_apply,
    )
    server = await _make_server(init, handler)
    sampler = Sampler(server, server.iserver.vplc_space, frame, link, init, programs)  # type: ignore[attr-defined]
    server.iserver.vplc_gateway.after_accepted = sampler.show_params  # type: ignore[attr-defined]
    await server.start()
    if cfg.insecure:
        _log.warning(
            "opcua_security_none",
            endpoint=cfg.endpoint,
            note="security policy None is offered: traffic (and passwords) cross the network "
            "unencrypted; remove 'None' from security_policies",
        )
    if cfg.trust_all_clients:
        _log.warning(
            "opcua_trust_all_clients",
            note="any client application certificate is accepted; set trust_all_clients: "
            "false and put the clients' certificates in the trusted/ folder",
        )
    _log.info(
        "opcua_server_started",
        endpoint=cfg.endpoint,
        policies=cfg.security_policies,
        anonymous=cfg.anonymous,
        trust_list=None if cfg.trust_all_clients else str(init.pki_dir / "trusted"),
        namespace=namespace_uri(cfg, init.app_name),
    )
    link.send(("conn", True))
    period = cfg.sample_ms / 1000
    next_stats = 0.0
    try:
        while not link.done.is_set():
            await sampler.sample_safely()
            now = time.monotonic()
            if now >= next_stats:
                next_stats = now + _STATS_TO_PARENT_S
                if os.getppid() != init.parent_pid:  # reparented: the parent died without EOF
                    break
                link.send(("bstats", _statistics(sampler, handler)))
            await asyncio.sleep(period)
        await sampler.sample_safely()  # the last values (the safe outputs after a stop)
    finally:
        await server.stop()
        handler.close()
        link.send(("conn", False))
        link.send(("bstats", _statistics(sampler, handler)))
        frame.close()


def _statistics(sampler: Sampler, handler: CommandHandler) -> dict[str, Any]:
    return {
        "child": {"pid": os.getpid()},
        "sampler": sampler.statistics(),
        "commands": handler.statistics(),
        "sessions": InternalSession._current_connections,
    }


def child_main(conn: Connection, init: OpcuaInit) -> None:
    """Entry point of the spawned server process; returns when the parent says stop or dies."""
    # Ctrl-C reaches the whole process group: the parent decides when the server stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging("json" if init.log_format == "json" else "console")
    # asyncua logs every request at INFO; vplc's own lines say what an operator needs.
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    asyncio.run(_serve(conn, init))

"""Connection state of an MQTT session: why it failed, logged loudly but rate-limited, and shown.

Every failed attempt is classified (``dns``, ``refused``, ``tls``, ``auth``, ``timeout``,
``closed``, ``client_id``, ``network``, ``config``, ``protocol``) and logged from the first one
on with the reason and a hint; while the same reason persists it is logged again after 10 s and
then every 60 s with the number of attempts, a new reason at once, and the recovery once.
Every live session is registered, so a view, a summary or a heartbeat can list them all.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
import weakref
from collections import deque
from typing import Any, Protocol

__all__ = [
    "ConnectionState",
    "EventLog",
    "MqttError",
    "StdlibLog",
    "classify",
    "connections",
    "register_connection",
    "unregister_connection",
]

_FIRST_REPEAT_S, _REPEAT_S = 10.0, 60.0
_FLAP_WINDOW_S, _FLAP_COUNT, _SHORT_SESSION_S = 60.0, 3, 10.0

HINTS = {
    "dns": "the host name does not resolve: check host",
    "refused": "nothing accepts connections there: is the broker running, is the port right?",
    "tls": "TLS failed: is tls.ca_file the CA that signed the broker's certificate, does the "
    "host match its name, and is this a TLS listener?",
    "auth": "the broker refused the login: check username and password (file or env)",
    "timeout": "no answer in time: a firewall dropping packets, or the wrong host?",
    "closed": "the broker closed the connection before accepting it: a TLS listener spoken to "
    "in plain TCP, a client certificate it requires, or its connection limit",
    "client_id": "the broker refused the client id",
    "network": "the network refused the connection (no route to the host?)",
    "config": "the local configuration cannot be used (a file or variable is missing)",
    "takeover": "another client connected with the same client id and the broker dropped us",
    "protocol": "the broker refused the protocol (set mqtt_version: '3.1.1' for an old broker)",
}


class EventLog(Protocol):
    """What a session logs with: structlog's loggers fit; so does :class:`StdlibLog`."""

    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...
    def error(self, event: str, **kw: Any) -> Any: ...


class StdlibLog:
    """``event key=value ...`` lines through the standard library's ``logging``."""

    def __init__(self, name: str = "vplc.mqtt") -> None:
        self._log = logging.getLogger(name)

    def _emit(self, level: int, event: str, kw: dict[str, Any]) -> None:
        fields = " ".join(f"{k}={v!r}" for k, v in kw.items())
        # The structured parts ride along, for a handler that renders them itself.
        extra = {"vplc_event": event, "vplc_fields": kw}
        self._log.log(level, "%s %s", event, fields, extra=extra)

    def info(self, event: str, **kw: Any) -> None:
        self._emit(logging.INFO, event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._emit(logging.WARNING, event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._emit(logging.ERROR, event, kw)


class MqttError(Exception):
    """A connection attempt failed or a session dropped; ``kind`` says which way (see HINTS)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def classify(exc: BaseException, *, endpoint: str) -> MqttError:
    """An exception from connecting (socket, TLS, DNS) as an MqttError with its kind."""
    if isinstance(exc, MqttError):
        return exc
    text = str(exc) or type(exc).__name__
    if isinstance(exc, socket.gaierror):
        return MqttError("dns", f"{endpoint}: {text}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MqttError("tls", f"{endpoint}: certificate not trusted: {exc.verify_message}")
    if isinstance(exc, ssl.SSLError):
        return MqttError("tls", f"{endpoint}: {text}")
    if isinstance(exc, ConnectionRefusedError):
        return MqttError("refused", f"{endpoint}: connection refused")
    if isinstance(exc, TimeoutError | socket.timeout):
        return MqttError("timeout", f"{endpoint}: {text}")
    if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError):
        return MqttError("closed", f"{endpoint}: {text}")
    if isinstance(exc, FileNotFoundError | PermissionError | ValueError):
        return MqttError("config", text)
    if isinstance(exc, OSError):
        return MqttError("network", f"{endpoint}: {text}")
    return MqttError("protocol", f"{endpoint}: {type(exc).__name__}: {text}")


class ConnectionState:
    """Counters, the last reason and the loud-but-bounded log of one session's connection."""

    def __init__(self, *, name: str, endpoint: str, client_id: str, log: EventLog) -> None:
        self.name, self.endpoint, self.client_id = name, endpoint, client_id
        self.log = log
        self.connected = False
        self.connects = 0
        self.attempts_failed = 0  # consecutive, since the last successful connect
        self.failures_total = 0
        self.drops = 0
        self.takeovers = 0
        self.reason = ""  # kind of the last failure or drop
        self.last_error = ""
        self.down_since: float | None = time.monotonic()
        self.up_since: float | None = None
        self.collision: str | None = None
        self.stopped = False
        self.refused_subscriptions: dict[str, str] = {}
        self._logged_at = 0.0
        self._logged_kind = ""
        self._repeat = _FIRST_REPEAT_S
        self._short_drops: deque[float] = deque(maxlen=_FLAP_COUNT)
        self._flap_logged = 0.0

    def _fields(self) -> dict[str, Any]:
        return {"who": self.name, "endpoint": self.endpoint, "client_id": self.client_id}

    # ------------------------------------------------------------------ transitions
    def failed(self, err: MqttError) -> None:
        """A connection attempt failed: log the first, a new reason, and then rarely."""
        now = time.monotonic()
        self.attempts_failed += 1
        self.failures_total += 1
        self.reason, self.last_error = err.kind, str(err)
        self.connected = False
        if self.down_since is None:
            self.down_since = now
        new_kind = err.kind != self._logged_kind
        if new_kind or now - self._logged_at >= self._repeat:
            if not new_kind:
                self._repeat = _REPEAT_S
            self._logged_at, self._logged_kind = now, err.kind
            self.log.warning(
                "mqtt_connect_failed",
                **self._fields(),
                reason=err.kind,
                error=err.detail,
                attempts=self.attempts_failed,
                down_s=round(now - self.down_since, 1),
                hint=HINTS.get(err.kind, ""),
            )

    def up(self) -> None:
        now = time.monotonic()
        down_s = now - self.down_since if self.down_since is not None else 0.0
        failed = self.attempts_failed
        self.connects += 1
        self.connected = True
        self.up_since = now
        if failed or self.connects > 1:
            self.log.warning(
                "mqtt_connected",
                **self._fields(),
                recovered_after_s=round(down_s, 1),
                failed_attempts=failed,
                last_reason=self.reason,
            )
        else:
            self.log.info("mqtt_connected", **self._fields())
        self.down_since = None
        self.attempts_failed = 0
        self._logged_kind = ""
        self._repeat = _FIRST_REPEAT_S

    def dropped(self, err: MqttError) -> None:
        """A session that was up went down."""
        now = time.monotonic()
        lasted = now - self.up_since if self.up_since is not None else 0.0
        self.drops += 1
        self.connected = False
        self.down_since = now
        self.reason, self.last_error = err.kind, str(err)
        self._logged_at, self._logged_kind = now, err.kind
        if err.kind == "takeover":
            self.takeovers += 1
            self.report_collision(
                f"the broker dropped this session because another client connected with the "
                f"same client id {self.client_id!r} (MQTT 5 reason: session taken over)"
            )
        elif lasted < _SHORT_SESSION_S:
            self._short_drops.append(now)
            self._check_flapping(now)
        self.log.warning(
            "mqtt_disconnected",
            **self._fields(),
            reason=err.kind,
            error=err.detail,
            session_s=round(lasted, 1),
        )

    def _check_flapping(self, now: float) -> None:
        drops = self._short_drops
        flapping = len(drops) == _FLAP_COUNT and now - drops[0] <= _FLAP_WINDOW_S
        if flapping and now - self._flap_logged >= _REPEAT_S:
            self._flap_logged = now
            self.log.error(
                "mqtt_connection_flapping",
                **self._fields(),
                drops=len(drops),
                within_s=round(now - drops[0], 1),
                explanation="the broker keeps closing this session shortly after it "
                "starts: most often a second client with the same client id (each "
                "connect drops the other), else an ACL or quota on the broker",
            )

    def report_collision(self, explanation: str) -> None:
        """Another instance uses our client id or our topics; logged once per explanation."""
        if explanation != self.collision:
            self.collision = explanation
            self.log.error("mqtt_client_id_collision", **self._fields(), explanation=explanation)

    def subscription_refused(self, topic: str, reason: str) -> None:
        if self.refused_subscriptions.get(topic) != reason:
            self.refused_subscriptions[topic] = reason
            self.log.error(
                "mqtt_subscribe_refused",
                **self._fields(),
                topic=topic,
                reason=reason,
                hint="the broker's ACL does not let this user read the topic",
            )

    def as_dict(self) -> dict[str, Any]:
        down = self.down_since
        return {
            "who": self.name,
            "endpoint": self.endpoint,
            "client_id": self.client_id,
            "connected": self.connected,
            "connects": self.connects,
            "connect_failures": self.failures_total,
            "failed_attempts": self.attempts_failed,
            "drops": self.drops,
            "takeovers": self.takeovers,
            "reason": self.reason,
            "last_error": self.last_error,
            "down_s": round(time.monotonic() - down, 1) if down is not None else 0.0,
            "collision": self.collision,
            "stopped": self.stopped,
            "refused_subscriptions": dict(self.refused_subscriptions),
        }


class _HasStatus(Protocol):
    def connection_status(self) -> dict[str, Any]: ...


_registry: weakref.WeakSet[Any] = weakref.WeakSet()


def register_connection(obj: _HasStatus) -> None:
    """List ``obj`` in :func:`connections` for as long as it lives (or until unregistered)."""
    _registry.add(obj)


def unregister_connection(obj: _HasStatus) -> None:
    _registry.discard(obj)


def connections() -> list[dict[str, Any]]:
    """The connection status of every live MQTT session of this process, by name."""
    return sorted((obj.connection_status() for obj in list(_registry)), key=lambda s: s["who"])

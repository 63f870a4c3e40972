"""One aiomqtt client per connection attempt, and what aiomqtt raises as a classified MqttError.

aiomqtt 2.x (public API only) does the protocol, TLS, login, will and the socket on the asyncio
loop; MqttSession makes a new client for every attempt (the password and the TLS files are read
again, so a rotated secret or a renewed certificate is picked up) and nothing of a dead
connection leaks into the next. aiomqtt reports failures as ``MqttError``: a refused CONNACK
as an ``MqttCodeError`` with the broker's reason code, a socket, DNS or TLS failure with the
original exception as its context, a drop with the reason as its cause; this module maps them
to the kinds the connection state logs (see :data:`hal.mqtt._state.HINTS`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from hal.mqtt._options import BrokerOptions
from hal.mqtt._state import MqttError, classify

__all__ = [
    "Inbound",
    "Will",
    "connect_error",
    "drop_error",
    "inbound",
    "inbox_type",
    "new_client",
    "reason_text",
    "refused",
]

_AUTH = {"Bad user name or password", "Not authorized", "Bad authentication method"}
# MQTT 3.1.1 CONNACK return codes, should a broker's refusal arrive as a bare number.
_V311_CONNACK = {1: "protocol", 2: "client_id", 3: "refused", 4: "auth", 5: "auth"}
_NORMAL = {"Success", "Normal disconnection"}
# Nagle's algorithm held a small message (a command's answer) while the previous one was
# unacknowledged, until the peer's delayed ACK: ~40 ms per answer (tests/bench/bench_commands.py).
# MQTT messages are whole packets already, written as they are queued: send them at once.
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@dataclass(frozen=True, slots=True)
class Inbound:
    """One received message; ``retain`` is True for a retained copy sent at subscribe time."""

    topic: str
    payload: bytes
    retain: bool
    qos: int


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def inbound(message: aiomqtt.Message) -> Inbound:
    payload = message.payload
    data = payload if isinstance(payload, bytes) else str(payload).encode()
    return Inbound(message.topic.value, data, bool(message.retain), message.qos)


def inbox_type(on_full: Callable[[], None]) -> type[asyncio.Queue[aiomqtt.Message]]:
    """aiomqtt's incoming queue (its ``queue_type``) that counts what a full queue drops.

    aiomqtt itself logs one warning per dropped message, a flood of log lines under a flood
    of messages; this queue drops quietly and lets the session count and rate-limit.
    """

    class Inbox(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            if self.full():
                on_full()
                return
            super().put_nowait(item)

    return Inbox


def new_client(
    options: BrokerOptions,
    *,
    client_id: str,
    will: Will | None,
    queue_type: type[asyncio.Queue[aiomqtt.Message]],
    max_inbound: int,
) -> aiomqtt.Client:
    """An unconnected client for one attempt (on the running loop); config errors classified."""
    o = options
    try:
        password = o.password()
        tls = o.tls.context() if o.tls is not None else None
    except (OSError, ValueError) as exc:
        raise classify(exc, endpoint=o.endpoint) from None
    return aiomqtt.Client(
        o.host,
        o.port,
        username=o.username,
        password=password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5
        if o.mqtt_version == "5"
        else aiomqtt.ProtocolVersion.V311,
        will=None
        if will is None
        else aiomqtt.Will(will.topic, will.payload, will.qos, will.retain),
        keepalive=o.keepalive_s,
        timeout=o.connect_timeout_s,  # the CONNACK wait, and the default of every other wait
        tls_context=tls,
        queue_type=queue_type,
        max_queued_incoming_messages=max_inbound,
        socket_options=_SOCKET_OPTIONS,  # set by aiomqtt on the socket once it is connected
    )


def reason_text(code: Any) -> str:
    """A paho reason code's name ("Session taken over"), else its text."""
    getname = getattr(code, "getName", None)
    return str(getname()) if callable(getname) else str(code)


def refused(code: Any) -> bool:
    """A SUBACK code that refuses the subscription (MQTT 5 reason, or 3.1.1's 0x80)."""
    failure = getattr(code, "is_failure", None)
    return bool(failure) if failure is not None else isinstance(code, int) and code >= 0x80


def _code(err: aiomqtt.MqttError) -> Any:
    return err.rc if isinstance(err, aiomqtt.MqttCodeError) else None


def connect_error(err: aiomqtt.MqttError, options: BrokerOptions) -> MqttError:
    """Why ``async with client`` failed: a refused CONNACK, the socket, DNS, TLS, or no answer."""
    endpoint = options.endpoint
    code = _code(err)
    if code is not None:
        if getattr(code, "getName", None) is None and isinstance(code, int):
            return MqttError(_V311_CONNACK.get(code, "refused"), f"{endpoint}: {err}")
        text = reason_text(code)
        if text in _AUTH:
            return MqttError("auth", f"{endpoint}: {text}")
        if text == "Client identifier not valid":
            return MqttError("client_id", f"{endpoint}: {text}")
        if "protocol" in text.lower():
            return MqttError("protocol", f"{endpoint}: {text}")
        return MqttError("refused", f"{endpoint}: CONNACK {text}")
    # aiomqtt raises its MqttError "from None" over the original: that is the context.
    cause = err.__cause__ or err.__context__
    if str(err) == "Operation timed out":  # aiomqtt's own wait (for the CONNACK) ran out
        return MqttError(
            "timeout",
            f"{endpoint}: no CONNACK within {options.connect_timeout_s} s (TCP connected, but "
            "the broker did not accept the MQTT session: no answer, or it closed the "
            "connection, e.g. a TLS listener spoken to in plain TCP)",
        )
    if cause is not None and not isinstance(cause, aiomqtt.MqttError):
        return classify(cause, endpoint=endpoint)
    return MqttError("protocol", f"{endpoint}: {err}")


def drop_error(err: aiomqtt.MqttError, endpoint: str) -> MqttError:
    """Why a session that was up ended (``client.messages`` raised), as the state logs it."""
    cause: BaseException | None = err.__cause__
    if isinstance(cause, aiomqtt.MqttError) and _code(cause) is not None:
        text = reason_text(_code(cause))
        if text == "Session taken over":
            return MqttError("takeover", f"{endpoint}: the broker disconnected us: {text}")
        if text in _NORMAL:
            return MqttError("closed", f"{endpoint}: the broker disconnected us")
        if text == "Unspecified error":  # paho's name for a socket that closed under it
            why = "closed without a reason from the broker: network, broker restart, or a twin"
            return MqttError("closed", f"{endpoint}: connection lost ({why} client)")
        return MqttError("closed", f"{endpoint}: connection lost ({text})")
    if cause is None:
        return MqttError("closed", f"{endpoint}: the broker disconnected us")
    if isinstance(cause, aiomqtt.MqttError):
        return MqttError("closed", f"{endpoint}: connection lost ({cause})")
    return classify(cause, endpoint=endpoint)

"""One paho-mqtt client driven by an asyncio loop: a single connection, from CONNECT to its end.

Uses paho-mqtt 2.x's public external-loop API (socket callbacks, ``loop_read``/``loop_write``/
``loop_misc``) rather than aiomqtt: aiomqtt 2.x offers no way to queue a QoS 0 message
without awaiting a per-message confirmation (measured here: 105–156 µs of CPU per message
against 34 µs for paho's ``publish``), and telemetry is mostly QoS 0. MqttSession makes a new
Wire for every connection attempt, so nothing of a dead connection leaks into the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from hal.mqtt._options import BrokerOptions
from hal.mqtt._state import MqttError, classify

__all__ = ["Inbound", "Will", "Wire", "consume", "reason_text"]

_AUTH = {"Bad user name or password", "Not authorized", "Bad authentication method"}


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


def reason_text(code: Any) -> str:
    getname = getattr(code, "getName", None)
    return str(getname()) if callable(getname) else str(code)


def consume(fut: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: a drop nobody awaited must not print 'never
    retrieved'."""
    if not fut.cancelled():
        fut.exception()


def _connack_error(code: Any, endpoint: str) -> MqttError:
    text = reason_text(code)
    if text in _AUTH:
        return MqttError("auth", f"{endpoint}: {text}")
    if text == "Client identifier not valid":
        return MqttError("client_id", f"{endpoint}: {text}")
    if "protocol" in text.lower():
        return MqttError("protocol", f"{endpoint}: {text}")
    return MqttError("refused", f"{endpoint}: CONNACK {text}")


class Wire:
    """A paho client whose socket the running asyncio loop watches; ``down`` says why it ended.

    Created and used on one loop. paho calls back on that loop, except the socket-open and
    first register-write callbacks, which come from the executor thread that connects (DNS,
    TCP and the TLS handshake block); those hop to the loop.
    """

    def __init__(
        self,
        options: BrokerOptions,
        *,
        client_id: str,
        will: Will | None,
        deliver: Callable[[Inbound], None],
    ) -> None:
        self.options = options
        self.endpoint = options.endpoint
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.connack: asyncio.Future[None] = self._loop.create_future()
        self.down: asyncio.Future[None] = self._loop.create_future()
        self.down.add_done_callback(consume)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._misc: asyncio.Task[None] | None = None
        self.closed = False
        self.client = self._new_client(client_id, will)

    def _new_client(self, client_id: str, will: Will | None) -> paho.Client:
        o = self.options
        proto = paho.MQTTv5 if o.mqtt_version == "5" else paho.MQTTv311
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=proto,
            reconnect_on_failure=False,
        )
        client.connect_timeout = o.connect_timeout_s
        try:
            if o.username is not None:
                client.username_pw_set(o.username, o.password())
            if o.tls is not None:
                client.tls_set_context(o.tls.context())
        except (OSError, ValueError) as exc:
            raise classify(exc, endpoint=o.endpoint) from None
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_ack
        client.on_subscribe = self._on_suback
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    # ------------------------------------------------------------------ life
    async def open(self, stop: asyncio.Event) -> None:
        """Connect and wait for the broker's acceptance; raise a classified MqttError."""
        o, client = self.options, self.client

        def blocking_connect() -> None:
            client.connect(o.host, o.port, keepalive=o.keepalive_s)

        stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        opening: asyncio.Future[Any] = self._loop.run_in_executor(None, blocking_connect)
        try:
            await asyncio.wait([opening, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not opening.done():
                opening.add_done_callback(consume)
                raise MqttError("closed", "stop requested while connecting")
            try:
                opening.result()
            except (OSError, ValueError) as exc:
                raise classify(exc, endpoint=o.endpoint) from None
            try:
                await asyncio.wait_for(asyncio.shield(self.connack), o.connect_timeout_s)
            except TimeoutError:
                raise MqttError(
                    "timeout", f"{o.endpoint}: no CONNACK within {o.connect_timeout_s} s"
                ) from None
        finally:
            stopper.cancel()

    async def disconnect(self, timeout: float) -> None:
        """A clean DISCONNECT (the broker then drops the last will), after what is queued."""
        if self.down.done():
            return
        try:
            sent = self.client.disconnect() == MQTTErrorCode.MQTT_ERR_SUCCESS
        except Exception:  # a socket already gone: nothing to say goodbye on
            sent = False
        if sent:
            with contextlib.suppress(TimeoutError, MqttError):
                await asyncio.wait_for(asyncio.shield(self.down), timeout)

    def close(self) -> None:
        """Forget this connection; fail whatever still waits on it; release the socket."""
        self.closed = True
        self._fail_pending(MqttError("closed", "the session ended"))
        if self._misc is not None:
            self._misc.cancel()
        if not self.connack.done():
            self.connack.cancel()
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock.fileno())
                self._loop.remove_writer(sock.fileno())
        with contextlib.suppress(Exception):
            self.client.disconnect()  # closes a socket a dropped session may still hold

    # ------------------------------------------------------------------ traffic
    def publish_nowait(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        info = self.client.publish(topic, payload, qos, retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError("closed", f"publish to {topic} failed: {paho.error_string(info.rc)}")
        return -1 if qos == 0 or info.is_published() else info.mid

    async def acknowledged(self, mid: int, topic: str, timeout: float) -> None:
        """Wait for the broker's PUBACK/PUBCOMP of message ``mid``."""
        fut = self._loop.create_future()
        self._pending[mid] = fut
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise MqttError("timeout", f"no acknowledgement for {topic} in {timeout} s") from None
        finally:
            self._pending.pop(mid, None)

    async def subscribe(self, topics: list[tuple[str, int]]) -> list[tuple[str, str]]:
        """Subscribe and wait for the SUBACK; the (topic, reason) pairs the broker refused."""
        result, mid = self.client.subscribe(topics)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttError("closed", f"subscribe failed: {paho.error_string(result)}")
        fut: asyncio.Future[list[Any]] = self._loop.create_future()
        self._pending[mid] = fut
        limit = self.options.connect_timeout_s * 2
        try:
            codes = await asyncio.wait_for(fut, limit)
        except TimeoutError:
            raise MqttError("timeout", f"no SUBACK in {limit} s") from None
        finally:
            self._pending.pop(mid, None)
        pairs = zip(topics, codes, strict=False)
        return [(t, reason_text(c)) for (t, _q), c in pairs if getattr(c, "is_failure", False)]

    def _fail_pending(self, err: MqttError) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
                fut.exception()
        self._pending.clear()

    # ------------------------------------------------------------------ paho callbacks
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, code: Any, _p: Any) -> None:
        if self.closed or self.connack.done():
            return
        if getattr(code, "is_failure", False):
            self.connack.set_exception(_connack_error(code, self.endpoint))
            self.connack.exception()  # retrieved by open(); never "never retrieved"
        else:
            self.connack.set_result(None)

    def _on_disconnect(self, client: paho.Client, _u: Any, flags: Any, code: Any, _p: Any) -> None:
        if self.closed:
            return
        text = reason_text(code)
        if getattr(flags, "is_disconnect_packet_from_server", False):
            kind = "takeover" if text == "Session taken over" else "closed"
            err = MqttError(kind, f"{self.endpoint}: the broker disconnected us: {text}")
        elif text in ("Success", "Normal disconnection"):
            err = MqttError("closed", f"{self.endpoint}: disconnected")
        else:
            err = MqttError("closed", f"{self.endpoint}: connection lost ({text})")
        if not self.connack.done():
            self.connack.set_exception(
                MqttError("closed", f"{self.endpoint}: the broker closed the connection "
                          f"before accepting it ({text})")
            )  # fmt: skip
            self.connack.exception()
        if not self.down.done():
            self.down.set_exception(err)
        self._fail_pending(err)

    def _on_message(self, client: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        if not self.closed:
            payload = bytes(message.payload)
            self._deliver(Inbound(message.topic, payload, bool(message.retain), message.qos))

    def _on_ack(self, client: paho.Client, _u: Any, mid: int, _c: Any, _p: Any) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_suback(self, client: paho.Client, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(codes)

    # ------------------------------------------------------------------ the socket
    def _on_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, _u: Any, sock: Any) -> None:
        self._on_loop(self._watch, sock)

    def _watch(self, sock: Any) -> None:
        if self.closed:
            sock.close()  # an attempt abandoned while its connect() was still running
            return
        self._loop.add_reader(sock.fileno(), self._readable)
        self._misc = self._loop.create_task(self._misc_loop())

    def _on_socket_close(self, client: paho.Client, _u: Any, sock: Any) -> None:
        fd = sock.fileno()
        if fd >= 0:
            self._on_loop(self._loop.remove_reader, fd)
            self._on_loop(self._loop.remove_writer, fd)

    def _on_register_write(self, client: paho.Client, _u: Any, sock: Any) -> None:
        fd = sock.fileno()
        if not self.closed and fd >= 0:  # -1: a socket closed under paho; down says why
            self._on_loop(self._loop.add_writer, fd, self._writable)

    def _on_unregister_write(self, client: paho.Client, _u: Any, sock: Any) -> None:
        fd = sock.fileno()
        if fd >= 0:
            self._on_loop(self._loop.remove_writer, fd)

    def _readable(self) -> None:
        client = self.client
        try:
            rc = client.loop_read()
            # An SSL socket may hold decrypted bytes select() cannot see: read them now.
            sock = client.socket()
            while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and isinstance(sock, ssl.SSLSocket):
                if not sock.pending():
                    break
                rc = client.loop_read()
        except Exception as exc:  # paho handles socket errors itself; anything else: drop
            self._fail(exc)

    def _writable(self) -> None:
        try:
            self.client.loop_write()
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        sock = self.client.socket()
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            self._loop.remove_writer(sock.fileno())
        if not self.down.done():
            self.down.set_exception(classify(exc, endpoint=self.endpoint))

    async def _misc_loop(self) -> None:
        # Keepalive pings and the PINGRESP timeout.
        while self.client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1.0)

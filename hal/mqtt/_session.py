"""One MQTT session kept alive on an asyncio loop: connect, TLS, login, will, backoff, reconnect.

Built on paho-mqtt's public external-loop API (socket callbacks, ``loop_read``/``loop_write``/
``loop_misc``) rather than on aiomqtt: aiomqtt 2.x offers no way to queue a QoS 0 message
without awaiting a per-message confirmation (measured here: 105–156 µs of CPU per message
against 34 µs for paho's ``publish``), and telemetry is mostly QoS 0.

A user supplies a :class:`SessionHandler`; the session calls it on every (re)connect after the
subscriptions are acknowledged, runs its ``running`` coroutine and feeds it the inbound messages
until the connection drops (then backs off and reconnects) or a stop is requested (then it
lets the handler say its last words and disconnects cleanly, so the last will is not sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from hal.mqtt._options import BrokerOptions, check_transport
from hal.mqtt._state import (
    ConnectionState,
    EventLog,
    MqttError,
    StdlibLog,
    classify,
    register_connection,
)

__all__ = ["Inbound", "MqttSession", "SessionHandler", "Will"]

_STABLE_S = 10.0  # a session that lasted this long resets the reconnect backoff
_INBOUND_CAPACITY = 100_000
_STOP_GRACE_S = 3.0  # the handler's last words and the DISCONNECT, at most
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


class SessionHandler:
    """What a session's user does; every method has a harmless default."""

    async def on_connect(self, session: MqttSession) -> None:
        """Connected, subscriptions acknowledged: births, claims, a first full publish."""

    async def serve(self, session: MqttSession) -> None:
        """The user's own work during a session (publish loops); cancelled when it ends."""
        await asyncio.Event().wait()

    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        """One inbound message, in arrival order."""

    async def on_stop(self, session: MqttSession) -> None:
        """A clean stop while still connected: the last messages before DISCONNECT."""

    def on_down(self, error: MqttError, *, was_up: bool) -> None:
        """A session dropped (``was_up``) or an attempt failed; called on the loop thread."""


def _reason_text(code: Any) -> str:
    getname = getattr(code, "getName", None)
    return str(getname()) if callable(getname) else str(code)


def _connack_error(code: Any, endpoint: str) -> MqttError:
    text = _reason_text(code)
    if text in _AUTH:
        return MqttError("auth", f"{endpoint}: {text}")
    if text == "Client identifier not valid":
        return MqttError("client_id", f"{endpoint}: {text}")
    if "protocol" in text.lower():
        return MqttError("protocol", f"{endpoint}: {text}")
    return MqttError("refused", f"{endpoint}: CONNACK {text}")


class MqttSession:
    """Keeps one broker connection alive for ``handler`` until stopped.

    ``run(stop)`` is a coroutine for a caller's loop; ``start()``/``stop()`` run it on a
    daemon thread of its own. ``connected`` (a threading.Event) is set while the session is
    up with its subscriptions in place. Publishing goes through ``publish`` (awaits the
    broker's acknowledgement for QoS ≥ 1) or ``publish_nowait`` (queues, for QoS 0), both on
    the session's loop; from another thread use ``call``.
    """

    def __init__(
        self,
        options: BrokerOptions,
        handler: SessionHandler,
        *,
        client_id: str,
        name: str,
        will: Will | None = None,
        subscriptions: Sequence[tuple[str, int]] = (),
        secrets: str | None = None,
        log: EventLog | None = None,
    ) -> None:
        if secrets is not None:
            check_transport(options, secrets=secrets)
        self.options = options
        self.handler = handler
        self.client_id = client_id
        self.name = name
        self.will = will
        self.log: EventLog = log if log is not None else StdlibLog()
        self.state = ConnectionState(
            name=name, endpoint=options.endpoint, client_id=client_id, log=self.log
        )
        self.connected = threading.Event()
        self.inbound_dropped = 0
        self._subs: dict[str, int] = dict(subscriptions)
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stop: asyncio.Event | None = None
        self._connack: asyncio.Future[None] | None = None
        self._down: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._inbox: asyncio.Queue[Inbound] | None = None
        self._misc: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        register_connection(self)

    # ------------------------------------------------------------------ own thread
    def start(self, thread_name: str | None = None) -> None:
        """Run the session on a daemon thread with its own loop; returns at once."""
        if self._thread is not None:
            return
        ready = threading.Event()

        def body() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            ready.set()
            try:
                loop.run_until_complete(self.run(self._stop))
            finally:
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        # A daemon, so a forgotten stop() cannot hang the process at exit.
        self._thread = threading.Thread(target=body, name=thread_name or self.name, daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask for a clean stop (handler's last words, DISCONNECT) and wait ≤ timeout."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def request_stop(self) -> None:
        """Thread-safe: end the session cleanly; ``run`` returns after the handler's goodbye."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stop.set)

    def call(self, coro: Any, timeout: float) -> Any:
        """Run a coroutine on the session's loop from another thread; its result."""
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()
            raise MqttError("closed", "the session's loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    # ------------------------------------------------------------------ the session loop
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Connect, serve, reconnect with jittered capped backoff until ``stop`` is set."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop = stop = stop if stop is not None else asyncio.Event()
        warning = self.options.insecure_warning()
        if warning is not None:
            self.log.warning("mqtt_insecure_transport", who=self.name, warning=warning)
        try:
            await self._reconnecting(stop)
        finally:
            self.state.stopped = True
            self.connected.clear()

    async def _reconnecting(self, stop: asyncio.Event) -> None:
        o = self.options
        backoff = o.reconnect_min_s
        self.state.stopped = False
        while not stop.is_set():
            was_up = False
            started = time.monotonic()
            try:
                client = await self._connect()
                was_up = True
                if await self._serve(client):
                    return
            except MqttError as err:
                if stop.is_set() and not was_up:
                    return  # asked to stop while connecting: not a failure to report
                self._went_down(err, was_up=was_up)
                # Only a session that lasted resets the backoff: a flapping one, or one a
                # twin on our client id took over, keeps backing off.
                if err.kind != "takeover" and time.monotonic() - started >= _STABLE_S:
                    backoff = o.reconnect_min_s
            finally:
                self._release()
            # Jitter spreads the reconnects of many clients after a broker restart.
            delay = backoff * random.uniform(0.8, 1.2)
            backoff = min(backoff * 2, o.reconnect_max_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def _went_down(self, err: MqttError, *, was_up: bool) -> None:
        self.connected.clear()
        if was_up:
            self.state.dropped(err)
        else:
            self.state.failed(err)
        try:
            self.handler.on_down(err, was_up=was_up)
        except Exception:
            self.log.error("mqtt_handler_error", who=self.name, traceback=traceback.format_exc())

    async def _serve(self, client: paho.Client) -> bool:
        """Subscriptions, the handler's session; True after a clean stop, raises on a drop."""
        assert self._stop is not None and self._down is not None
        await self._subscribe(client, list(self._subs.items()))
        self.state.up()
        self.connected.set()
        down = self._down
        tasks: list[asyncio.Future[Any]] = [
            asyncio.create_task(self._guard(self.handler.on_connect(self))),
            asyncio.create_task(self._receive()),
        ]
        stopper: asyncio.Future[Any] = asyncio.create_task(self._stop.wait())
        running: asyncio.Task[None] | None = None
        try:
            while True:
                done, _ = await asyncio.wait(
                    [*tasks, stopper, down], return_when=asyncio.FIRST_COMPLETED
                )
                if down in done:
                    down.result()  # raises the reason of the drop
                if stopper in done:
                    break
                for task in done:
                    if task.exception() is not None and down.done():
                        down.result()  # the drop's own reason, not its echo
                    task.result()  # a failed handler task raises (MqttError) here
                    tasks.remove(task)
                    if running is None:  # on_connect() finished: the session's own work
                        running = asyncio.create_task(self._guard(self.handler.serve(self)))
                        tasks.append(running)
        finally:
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)
        await self._goodbye(client)
        return True

    async def _guard(self, coro: Any) -> None:
        """A handler's coroutine; a bug in it becomes a logged drop, never a dead thread."""
        try:
            await coro
        except (MqttError, asyncio.CancelledError):
            raise
        except Exception as exc:
            self.log.error(
                "mqtt_handler_error",
                who=self.name,
                error=repr(exc),
                traceback=traceback.format_exc(),
            )
            raise MqttError("protocol", f"handler failed: {exc!r}") from exc

    async def _goodbye(self, client: paho.Client) -> None:
        try:
            await asyncio.wait_for(self._guard(self.handler.on_stop(self)), _STOP_GRACE_S)
        except (MqttError, TimeoutError) as exc:
            self.log.warning("mqtt_goodbye_incomplete", who=self.name, error=str(exc))
        down = self._down
        if down is None or down.done():
            return
        if client.disconnect() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            with contextlib.suppress(TimeoutError, MqttError):
                await asyncio.wait_for(asyncio.shield(down), _STOP_GRACE_S)
        self.connected.clear()
        self.state.connected = False

    async def _receive(self) -> None:
        assert self._inbox is not None
        inbox = self._inbox
        while True:
            msg = await inbox.get()
            await self._guard(self.handler.on_message(self, msg))

    # ------------------------------------------------------------------ connecting
    def _new_client(self) -> paho.Client:
        o = self.options
        proto = paho.MQTTv5 if o.mqtt_version == "5" else paho.MQTTv311
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
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
        if self.will is not None:
            w = self.will
            client.will_set(w.topic, w.payload, w.qos, w.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    async def _connect(self) -> paho.Client:
        """A new client, connected and accepted (CONNACK); raises a classified MqttError."""
        loop = asyncio.get_running_loop()
        o = self.options
        client = self._new_client()
        self._client = client
        self._connack = loop.create_future()
        self._down = loop.create_future()
        self._down.add_done_callback(_consume)
        self._inbox = asyncio.Queue(_INBOUND_CAPACITY)

        def blocking_connect() -> None:
            # DNS, TCP and the TLS handshake block: an executor thread does them.
            client.connect(o.host, o.port, keepalive=o.keepalive_s)

        assert self._stop is not None
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        opening: asyncio.Future[Any] = loop.run_in_executor(None, blocking_connect)
        try:
            await asyncio.wait([opening, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not opening.done():
                opening.add_done_callback(_consume)
                raise MqttError("closed", "stop requested while connecting")
            try:
                opening.result()
            except (OSError, ValueError) as exc:
                raise classify(exc, endpoint=o.endpoint) from None
            try:
                await asyncio.wait_for(asyncio.shield(self._connack), o.connect_timeout_s)
            except TimeoutError:
                raise MqttError(
                    "timeout", f"{o.endpoint}: no CONNACK within {o.connect_timeout_s} s"
                ) from None
        finally:
            stopper.cancel()
        return client

    def _release(self) -> None:
        """Forget the client of the session that ended; fail whatever still waits on it."""
        client, self._client = self._client, None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(MqttError("closed", "the session ended"))
                fut.exception()
        self._pending.clear()
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        if self._connack is not None and not self._connack.done():
            self._connack.cancel()
        if client is not None:
            sock = client.socket()
            if sock is not None and self._loop is not None:
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_reader(sock.fileno())
                    self._loop.remove_writer(sock.fileno())
            with contextlib.suppress(Exception):
                client.disconnect()  # closes a socket a dropped session may still hold
        self.connected.clear()

    # ------------------------------------------------------------------ paho callbacks
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, code: Any, _p: Any) -> None:
        fut = self._connack
        if client is not self._client or fut is None or fut.done():
            return
        if getattr(code, "is_failure", False):
            fut.set_exception(_connack_error(code, self.options.endpoint))
            fut.exception()  # retrieved by _connect; never "exception was never retrieved"
        else:
            fut.set_result(None)

    def _on_disconnect(self, client: paho.Client, _u: Any, flags: Any, code: Any, _p: Any) -> None:
        if client is not self._client:
            return
        text = _reason_text(code)
        endpoint = self.options.endpoint
        if getattr(flags, "is_disconnect_packet_from_server", False):
            kind = "takeover" if text == "Session taken over" else "closed"
            err = MqttError(kind, f"{endpoint}: the broker disconnected us: {text}")
        elif text == "Success" or text == "Normal disconnection":
            err = MqttError("closed", f"{endpoint}: disconnected")
        else:
            err = MqttError("closed", f"{endpoint}: connection lost ({text})")
        connack = self._connack
        if connack is not None and not connack.done():
            connack.set_exception(
                MqttError("closed", f"{endpoint}: the broker closed the connection before "
                          f"accepting it ({text})")
            )  # fmt: skip
            connack.exception()
        down = self._down
        if down is not None and not down.done():
            down.set_exception(err)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
                fut.exception()
        self._pending.clear()
        self.connected.clear()

    def _on_message(self, client: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        inbox = self._inbox
        if client is not self._client or inbox is None:
            return
        msg = Inbound(message.topic, bytes(message.payload), bool(message.retain), message.qos)
        try:
            inbox.put_nowait(msg)
        except asyncio.QueueFull:
            self.inbound_dropped += 1
            if self.inbound_dropped == 1 or self.inbound_dropped % 10_000 == 0:
                self.log.error(
                    "mqtt_inbound_overflow",
                    who=self.name,
                    dropped=self.inbound_dropped,
                    capacity=_INBOUND_CAPACITY,
                )

    def _on_publish(self, client: paho.Client, _u: Any, mid: int, _c: Any, _p: Any) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_subscribe(
        self, client: paho.Client, _u: Any, mid: int, codes: list[Any], _p: Any
    ) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(codes)

    # Socket callbacks come from the loop thread, or from the executor thread while connecting.
    def _on_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, _u: Any, sock: Any) -> None:
        self._on_loop(self._watch, client, sock)

    def _watch(self, client: paho.Client, sock: Any) -> None:
        loop = self._loop
        assert loop is not None
        if client is not self._client:
            sock.close()  # an attempt abandoned while its connect() was still running
            return
        loop.add_reader(sock.fileno(), self._readable, client)
        self._misc = loop.create_task(self._misc_loop(client))

    def _on_socket_close(self, client: paho.Client, _u: Any, sock: Any) -> None:
        fd = sock.fileno()
        loop = self._loop
        if fd < 0 or loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            loop.remove_reader(fd)
            loop.remove_writer(fd)
        else:
            self._on_loop(loop.remove_reader, fd)
            self._on_loop(loop.remove_writer, fd)

    def _on_register_write(self, client: paho.Client, _u: Any, sock: Any) -> None:
        loop = self._loop
        if loop is not None and client is self._client:
            self._on_loop(loop.add_writer, sock.fileno(), self._writable, client)

    def _on_unregister_write(self, client: paho.Client, _u: Any, sock: Any) -> None:
        loop = self._loop
        if loop is not None:
            self._on_loop(loop.remove_writer, sock.fileno())

    def _readable(self, client: paho.Client) -> None:
        try:
            rc = client.loop_read()
            # An SSL socket may hold decrypted bytes select() cannot see: read them now.
            sock = client.socket()
            while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and isinstance(sock, ssl.SSLSocket):
                if not sock.pending():
                    break
                rc = client.loop_read()
        except Exception as exc:  # paho handles socket errors itself; anything else: drop
            self._fail(client, exc)

    def _writable(self, client: paho.Client) -> None:
        try:
            client.loop_write()
        except Exception as exc:
            self._fail(client, exc)

    def _fail(self, client: paho.Client, exc: Exception) -> None:
        loop, sock = self._loop, client.socket()
        if loop is not None and sock is not None:
            loop.remove_reader(sock.fileno())
            loop.remove_writer(sock.fileno())
        down = self._down
        if client is self._client and down is not None and not down.done():
            down.set_exception(classify(exc, endpoint=self.options.endpoint))

    async def _misc_loop(self, client: paho.Client) -> None:
        # Keepalive pings and the PINGRESP timeout.
        while client.loop_misc() == MQTTErrorCode.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1.0)

    # ------------------------------------------------------------------ while connected
    def _require(self) -> paho.Client:
        client = self._client
        if client is None or not self.connected.is_set():
            raise MqttError("closed", "not connected")
        return client

    def publish_nowait(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Queue one message (on the session's loop); QoS 0 is then fire-and-forget."""
        info = self._require().publish(topic, payload, qos, retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError("closed", f"publish to {topic} failed: {paho.error_string(info.rc)}")

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Publish; for QoS ≥ 1 return once the broker acknowledged it."""
        client = self._require()
        info = client.publish(topic, payload, qos, retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttError("closed", f"publish to {topic} failed: {paho.error_string(info.rc)}")
        if qos == 0 or info.is_published():
            return
        fut = asyncio.get_running_loop().create_future()
        self._pending[info.mid] = fut
        if info.is_published():  # acknowledged in between
            self._pending.pop(info.mid, None)
            return
        limit = timeout if timeout is not None else self.options.connect_timeout_s * 2
        try:
            await asyncio.wait_for(fut, limit)
        except TimeoutError:
            raise MqttError("timeout", f"no acknowledgement for {topic} in {limit} s") from None
        finally:
            self._pending.pop(info.mid, None)

    def subscribed(self, topic: str) -> bool:
        """True if ``topic`` is among the subscriptions restored at every connect."""
        return topic in self._subs

    async def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe now (if connected) and again after every reconnect."""
        self._subs[topic] = qos
        if self._client is not None and self.connected.is_set():
            await self._subscribe(self._client, [(topic, qos)])

    async def _subscribe(self, client: paho.Client, topics: list[tuple[str, int]]) -> None:
        if not topics:
            return
        result, mid = client.subscribe(topics)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttError("closed", f"subscribe failed: {paho.error_string(result)}")
        fut: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[mid] = fut
        limit = self.options.connect_timeout_s * 2
        try:
            codes = await asyncio.wait_for(fut, limit)
        except TimeoutError:
            raise MqttError("timeout", f"no SUBACK in {limit} s") from None
        for (topic, _qos), code in zip(topics, codes, strict=False):
            if getattr(code, "is_failure", False):
                self.state.subscription_refused(topic, _reason_text(code))

    def connection_status(self) -> dict[str, Any]:
        return self.state.as_dict() | {"inbound_dropped": self.inbound_dropped}


def _consume(fut: asyncio.Future[Any]) -> None:
    # Mark an exception as seen: a drop nobody awaited must not print "never retrieved".
    if not fut.cancelled():
        fut.exception()

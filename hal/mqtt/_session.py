"""One MQTT session kept alive on an asyncio loop: connect, TLS, login, will, backoff, reconnect.

A user supplies a :class:`SessionHandler`; the session calls it on every (re)connect after the
subscriptions are acknowledged, runs its ``serve`` coroutine and feeds it the inbound messages
until the connection drops (then backs off and reconnects) or a stop is requested (then it
lets the handler say its last words and disconnects cleanly, so the last will is not sent).
Each connection is a :class:`hal.mqtt._wire.Wire` (paho-mqtt on the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

from hal.mqtt._options import BrokerOptions, check_transport
from hal.mqtt._state import ConnectionState, EventLog, MqttError, StdlibLog, register_connection
from hal.mqtt._wire import Inbound, Will, Wire

__all__ = ["Inbound", "MqttSession", "SessionHandler", "Will"]

_STABLE_S = 10.0  # a session that lasted this long resets the reconnect backoff
_INBOUND_CAPACITY = 100_000
_STOP_GRACE_S = 3.0  # the handler's last words and the DISCONNECT, at most


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
        self._wire: Wire | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._inbox: asyncio.Queue[Inbound] | None = None
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
                wire = await self._connect(stop)
                was_up = True
                if await self._serve(wire):
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

    async def _serve(self, wire: Wire) -> bool:
        """Subscriptions, the handler's session; True after a clean stop, raises on a drop."""
        assert self._stop is not None
        await self._subscribe(wire, list(self._subs.items()))
        self.state.up()
        self.connected.set()
        down = wire.down
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
        await self._goodbye(wire)
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

    async def _goodbye(self, wire: Wire) -> None:
        try:
            await asyncio.wait_for(self._guard(self.handler.on_stop(self)), _STOP_GRACE_S)
        except (MqttError, TimeoutError) as exc:
            self.log.warning("mqtt_goodbye_incomplete", who=self.name, error=str(exc))
        await wire.disconnect(_STOP_GRACE_S)
        self.connected.clear()
        self.state.connected = False

    async def _receive(self) -> None:
        assert self._inbox is not None
        inbox = self._inbox
        while True:
            msg = await inbox.get()
            await self._guard(self.handler.on_message(self, msg))

    # ------------------------------------------------------------------ connecting
    async def _connect(self, stop: asyncio.Event) -> Wire:
        """A new connection, accepted by the broker; raises a classified MqttError."""
        self._inbox = asyncio.Queue(_INBOUND_CAPACITY)
        wire = Wire(self.options, client_id=self.client_id, will=self.will, deliver=self._deliver)
        self._wire = wire
        wire.down.add_done_callback(lambda _: self.connected.clear())
        await wire.open(stop)
        return wire

    def _release(self) -> None:
        """Forget the connection that ended (its socket, its waiters)."""
        wire, self._wire = self._wire, None
        if wire is not None:
            wire.close()
        self.connected.clear()

    def _deliver(self, msg: Inbound) -> None:
        inbox = self._inbox
        if inbox is None:
            return
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

    # ------------------------------------------------------------------ while connected
    def _require(self) -> Wire:
        wire = self._wire
        if wire is None or wire.down.done() or not self.connected.is_set():
            raise MqttError("closed", "not connected")
        return wire

    def publish_nowait(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Queue one message (on the session's loop); QoS 0 is then fire-and-forget."""
        self._require().publish_nowait(topic, payload, qos, retain)

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
        wire = self._require()
        mid = wire.publish_nowait(topic, payload, qos, retain)
        if mid >= 0:
            limit = timeout if timeout is not None else self.options.connect_timeout_s * 2
            await wire.acknowledged(mid, topic, limit)

    def subscribed(self, topic: str) -> bool:
        """True if ``topic`` is among the subscriptions restored at every connect."""
        return topic in self._subs

    async def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe now (if connected) and again after every reconnect."""
        self._subs[topic] = qos
        wire = self._wire
        if wire is not None and self.connected.is_set():
            await self._subscribe(wire, [(topic, qos)])

    async def _subscribe(self, wire: Wire, topics: list[tuple[str, int]]) -> None:
        if topics:
            for topic, reason in await wire.subscribe(topics):
                self.state.subscription_refused(topic, reason)

    def connection_status(self) -> dict[str, Any]:
        return self.state.as_dict() | {"inbound_dropped": self.inbound_dropped}

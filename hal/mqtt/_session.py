"""One MQTT session kept alive on an asyncio loop: connect, TLS, login, will, backoff, reconnect.

A user supplies a :class:`SessionHandler`; the session calls it on every (re)connect after the
subscriptions are acknowledged, runs its ``serve`` coroutine and feeds it the inbound messages
until the connection drops (then backs off and reconnects) or a stop is requested (then it
lets the handler say its last words and disconnects cleanly, so the last will is not sent).
Each connection attempt is a new ``aiomqtt.Client`` (aiomqtt 2.x, public API only); its
messages are published by the connection's :class:`hal.mqtt._outbox.Outbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomqtt

from hal.mqtt._options import BrokerOptions, check_transport
from hal.mqtt._outbox import Outbox
from hal.mqtt._state import (
    ConnectionState,
    EventLog,
    MqttError,
    StdlibLog,
    classify,
    register_connection,
)
from hal.mqtt._wire import (
    Inbound,
    Will,
    connect_error,
    drop_error,
    inbound,
    inbox_type,
    new_client,
    reason_text,
    refused,
)

__all__ = ["Inbound", "MqttSession", "SessionHandler", "Will"]

_STABLE_S = 10.0  # a session that lasted this long resets the reconnect backoff
_INBOUND_CAPACITY = 100_000
_STOP_GRACE_S = 3.0  # the handler's last words and the DISCONNECT, at most
_DROP_SETTLE_S = 0.5  # a refused publish: time for the receiver to learn why the link dropped


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
    the session's loop and sent in call order; from another thread use ``call``.
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
        self._outbound_dropped = 0  # of connections that ended
        self._was_up = False
        self._subs: dict[str, int] = dict(subscriptions)
        self._client: aiomqtt.Client | None = None
        self._outbox: Outbox | None = None
        self._inbox_type = inbox_type(self._inbound_overflow)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
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
            self._was_up = False
            started = time.monotonic()
            try:
                if await self._attempt(stop):
                    return
            except MqttError as err:
                if stop.is_set() and not self._was_up:
                    return  # asked to stop while connecting: not a failure to report
                self._went_down(err, was_up=self._was_up)
                # Only a session that lasted resets the backoff: a flapping one, or one a
                # twin on our client id took over, keeps backing off.
                if err.kind != "takeover" and time.monotonic() - started >= _STABLE_S:
                    backoff = o.reconnect_min_s
            finally:
                self.connected.clear()
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

    async def _attempt(self, stop: asyncio.Event) -> bool:
        """One connection from CONNECT to its end: True after a clean stop, else raises."""
        client = new_client(
            self.options,
            client_id=self.client_id,
            will=self.will,
            queue_type=self._inbox_type,
            max_inbound=_INBOUND_CAPACITY,
        )
        if not await self._enter(client, stop):
            return True
        self._was_up = True
        outbox = Outbox(client, log=self.log, name=self.name)
        try:
            await self._subscribe(client, list(self._subs.items()))
            self._client, self._outbox = client, outbox
            await self._serve(client, outbox)
            return True
        finally:
            self._client = self._outbox = None
            self.connected.clear()
            self._outbound_dropped += outbox.dropped
            outbox.close(MqttError("closed", "the session ended"))
            await self._leave(client)

    async def _enter(self, client: aiomqtt.Client, stop: asyncio.Event) -> bool:
        """Connect; False if a stop came first. Raises a classified MqttError."""
        entering = asyncio.ensure_future(client.__aenter__())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([entering, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not entering.done():
            # Abandoned, paho would go on connecting on its executor thread and this loop
            # would then serve the socket: a ghost session under our client id. So the
            # attempt in flight ends first (its connect and CONNACK waits are bounded).
            await asyncio.wait([entering])
            if not entering.cancelled() and entering.exception() is None:
                await self._leave(client)
            return False
        try:
            entering.result()
        except aiomqtt.MqttError as err:
            raise connect_error(err, self.options) from None
        except Exception as exc:
            raise classify(exc, endpoint=self.options.endpoint) from None
        return True

    async def _leave(self, client: aiomqtt.Client) -> None:
        """DISCONNECT if still connected (the broker then drops the will); bounded."""
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            await asyncio.wait_for(client.__aexit__(None, None, None), _STOP_GRACE_S)

    async def _serve(self, client: aiomqtt.Client, outbox: Outbox) -> None:
        """The handler's session until a stop (its goodbye, then returns) or a drop (raises)."""
        assert self._stop is not None
        self.state.up()
        self.connected.set()
        receiver = asyncio.create_task(self._receive(client))
        handler: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._guard(self.handler.on_connect))
        ]
        publishers = outbox.start()
        stopper = asyncio.create_task(self._stop.wait())
        serving = False
        try:
            while True:
                done, _ = await asyncio.wait(
                    [*handler, receiver, *publishers, stopper],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stopper in done:
                    break
                for task in done:
                    if task.exception() is not None:
                        raise await self._why(task, receiver)
                    handler.remove(task)  # only a handler's coroutine ends without an error
                    if not serving:  # on_connect() finished: the session's own work
                        serving = True
                        handler.append(asyncio.create_task(self._guard(self.handler.serve)))
        finally:
            for task in [*handler, receiver, stopper]:
                task.cancel()
            await asyncio.gather(*handler, receiver, stopper, return_exceptions=True)
        await self._goodbye(outbox)

    async def _why(self, task: asyncio.Task[Any], receiver: asyncio.Task[None]) -> BaseException:
        """Why the session ends; a failed publish defers to the receiver, which knows the
        reason of a drop (paho refuses a publish only once the connection is gone)."""
        exc = task.exception()
        assert exc is not None
        if isinstance(exc, MqttError) and exc.kind == "closed" and not receiver.done():
            await asyncio.wait([receiver], timeout=_DROP_SETTLE_S)
        if receiver.done() and not receiver.cancelled() and receiver.exception() is not None:
            return receiver.exception() or exc
        return exc

    async def _guard(self, step: Callable[[MqttSession], Awaitable[None]]) -> None:
        """A handler's step; a bug in it becomes a logged drop, never a dead thread.

        The step's coroutine is made here, inside the task: a task cancelled before it first
        runs then leaves no coroutine behind that was never awaited.
        """
        try:
            await step(self)
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

    async def _goodbye(self, outbox: Outbox) -> None:
        try:
            await asyncio.wait_for(self._guard(self.handler.on_stop), _STOP_GRACE_S)
        except (MqttError, TimeoutError) as exc:
            self.log.warning("mqtt_goodbye_incomplete", who=self.name, error=str(exc))
        if not await outbox.flush(_STOP_GRACE_S):
            self.log.warning(
                "mqtt_goodbye_incomplete", who=self.name, error="messages unsent at DISCONNECT"
            )
        self.connected.clear()
        self.state.connected = False

    async def _receive(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                await self._guard(functools.partial(_deliver, self.handler, inbound(message)))
        except aiomqtt.MqttError as err:
            raise drop_error(err, self.options.endpoint) from None
        raise MqttError("closed", f"{self.options.endpoint}: the message stream ended")

    def _inbound_overflow(self) -> None:
        self.inbound_dropped += 1
        if self.inbound_dropped == 1 or self.inbound_dropped % 10_000 == 0:
            self.log.error(
                "mqtt_inbound_overflow",
                who=self.name,
                dropped=self.inbound_dropped,
                capacity=_INBOUND_CAPACITY,
            )

    # ------------------------------------------------------------------ while connected
    def _require(self) -> Outbox:
        outbox = self._outbox
        if outbox is None or not self.connected.is_set():
            raise MqttError("closed", "not connected")
        return outbox

    def publish_nowait(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Queue one message (on the session's loop); sent in call order, nothing awaited."""
        self._require().put(topic, payload, qos, retain)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 0,
        retain: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Publish after what is queued; for QoS ≥ 1 return once the broker acknowledged it."""
        outbox = self._require()
        if qos == 0:
            outbox.put(topic, payload, 0, retain)
            return
        limit = timeout if timeout is not None else self.options.connect_timeout_s * 2
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        outbox.put(topic, payload, qos, retain, done, limit)
        await done

    def subscribed(self, topic: str) -> bool:
        """True if ``topic`` is among the subscriptions restored at every connect."""
        return topic in self._subs

    async def subscribe(self, topic: str, qos: int = 1) -> None:
        """Subscribe now (if connected) and again after every reconnect."""
        self._subs[topic] = qos
        client = self._client
        if client is not None and self.connected.is_set():
            await self._subscribe(client, [(topic, qos)])

    async def _subscribe(self, client: aiomqtt.Client, topics: list[tuple[str, int]]) -> None:
        if not topics:
            return
        limit = self.options.connect_timeout_s * 2
        try:
            codes = await client.subscribe(topics, timeout=limit)
        except aiomqtt.MqttCodeError as err:
            raise MqttError("closed", f"{self.options.endpoint}: subscribe failed: {err}") from None
        except aiomqtt.MqttError:
            raise MqttError("timeout", f"{self.options.endpoint}: no SUBACK in {limit} s") from None
        for (topic, _qos), code in zip(topics, codes, strict=False):
            if refused(code):
                self.state.subscription_refused(topic, reason_text(code))

    def connection_status(self) -> dict[str, Any]:
        outbox = self._outbox
        return self.state.as_dict() | {
            "inbound_dropped": self.inbound_dropped,
            "outbound_dropped": self._outbound_dropped + (outbox.dropped if outbox else 0),
        }


async def _deliver(handler: SessionHandler, msg: Inbound, session: MqttSession) -> None:
    await handler.on_message(session, msg)

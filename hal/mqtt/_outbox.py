"""The messages a connection publishes, in call order, through a few long-lived publisher tasks.

aiomqtt's ``publish`` is a coroutine that returns when paho has written the message (QoS 0) or
the broker acknowledged it (QoS 1, 2): awaiting it in the caller would make every telemetry
message wait for a loop round trip, and a task per message costs more than the message. So
``put`` only appends to a deque; ``_PUBLISHERS`` tasks take messages from it in order and
await ``client.publish``. Each hands its message to paho before its first suspension, so paho
sends them in the order they were put; several publishers keep several messages in one socket
write. QoS 0 waits without a timeout (aiomqtt then needs no timer or task per message): a
connection that stops writing is ended by its keepalive, and the session cancels the
publishers with it.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any, NamedTuple

import aiomqtt

from hal.mqtt._state import EventLog, MqttError

__all__ = ["Outbox"]

# QoS >= 1 messages awaiting their acknowledgement, at most: paho sends no more than the
# broker's Receive Maximum (Mosquitto: 20) and holds the next one back while later QoS 0
# messages go out, out of order.
_ACK_WINDOW = 8
# Each loop turn writes what the publishers handed to paho, then wakes them: more publishers,
# fewer turns per message. aiomqtt walks its pending calls on every publish, so too many cost
# again (tests/bench/bench_mqtt_session.py, QoS 0 CPU per message: 8 -> 38 us, 16 -> 31-36,
# 32 -> 29-31, 48 -> 28-29, 128 -> 34 us).
_PUBLISHERS = 32
# Room for a full publish of a large app after a reconnect; beyond it a burst is dropped and
# counted (the bridge republishes every retained topic after a reconnect and every refresh_s).
_CAPACITY = 200_000


class _Item(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool
    done: asyncio.Future[None] | None
    timeout: float


class Outbox:
    """The publishing side of one connection; ``close`` ends it and fails whoever waits."""

    def __init__(self, client: aiomqtt.Client, *, log: EventLog, name: str) -> None:
        self._client = client
        self._log = log
        self._name = name
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._busy = 0
        self._unacked = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        # aiomqtt warns above this many calls awaiting the broker; ours are bounded anyway.
        client.pending_calls_threshold = _PUBLISHERS + 64

    def start(self) -> list[asyncio.Task[None]]:
        self._tasks = [asyncio.create_task(self._publisher()) for _ in range(_PUBLISHERS)]
        return self._tasks

    def put(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        done: asyncio.Future[None] | None = None,
        timeout: float = math.inf,
    ) -> None:
        """Queue one message; ``done`` (if given) completes when it is sent or acknowledged."""
        # What paho would refuse, refused here, at the caller, rather than in a publisher.
        if not topic or "+" in topic or "#" in topic or qos not in (0, 1, 2):
            raise ValueError(f"cannot publish to topic {topic!r} at QoS {qos!r}")
        if done is None and len(self._queue) >= _CAPACITY:
            self._overflow(topic)
            return
        self._queue.append(_Item(topic, payload, qos, retain, done, timeout))
        self._idle.clear()
        self._wake.set()

    def _overflow(self, topic: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 10_000 == 0:
            self._log.error(
                "mqtt_outbound_overflow",
                who=self._name,
                dropped=self.dropped,
                capacity=_CAPACITY,
                topic=topic,
            )

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued message is written (QoS 0) or acknowledged; False if not
        within ``timeout`` or a publisher ended (the connection failed under it)."""
        idle = asyncio.ensure_future(self._idle.wait())
        try:
            await asyncio.wait([idle, *self._tasks], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            idle.cancel()
        return self._idle.is_set() and not self._queue

    def close(self, err: MqttError) -> None:
        """Stop the publishers; whoever waits for a message of this connection gets ``err``."""
        for task in self._tasks:
            task.cancel()
        while self._queue:
            _fail(self._queue.popleft().done, err)

    async def _publisher(self) -> None:
        queue, wake = self._queue, self._wake
        while True:
            if not queue or (queue[0].qos and self._unacked >= _ACK_WINDOW):
                # A QoS >= 1 message beyond the window waits at the head, and everything
                # behind it too: paho would hold it back and let later QoS 0 ones pass.
                if not queue and self._busy == 0:
                    self._idle.set()
                wake.clear()
                await wake.wait()
                continue
            item = queue.popleft()
            self._busy += 1
            self._unacked += item.qos > 0
            try:
                await self._send(item)
            finally:
                self._busy -= 1
                if item.qos:
                    self._unacked -= 1
                    wake.set()  # the head may have been waiting for this acknowledgement

    async def _send(self, item: _Item) -> None:
        done = item.done
        try:
            await self._client.publish(
                item.topic, item.payload, item.qos, item.retain, timeout=item.timeout
            )
        except aiomqtt.MqttCodeError as exc:
            # paho refused it: the connection is gone (the session learns why from the
            # receiver) or the client is unusable; either way this connection ends.
            err = MqttError("closed", f"publish to {item.topic} failed: {exc}")
            _fail(done, err)
            raise err from None
        except aiomqtt.MqttError:
            _fail(done, MqttError("timeout", f"no acknowledgement for {item.topic} in "
                                  f"{item.timeout} s"))  # fmt: skip
        except asyncio.CancelledError:
            _fail(done, MqttError("closed", "the session ended"))
            raise
        except Exception as exc:  # a payload paho refuses: the caller's mistake, not the link's
            if done is None:
                self._log.error(
                    "mqtt_publish_refused", who=self._name, topic=item.topic, error=repr(exc)
                )
            _fail(done, exc)
        else:
            if done is not None and not done.done():
                done.set_result(None)


def _fail(done: asyncio.Future[Any] | None, exc: BaseException) -> None:
    if done is not None and not done.done():
        done.set_exception(exc)
        done.exception()  # a caller that gave up must not log "never retrieved"

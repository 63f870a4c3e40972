"""The network half of the ``opcua`` driver: an asyncua client on its own thread and loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import structlog
from asyncua import Client, ua
from asyncua.ua.uaerrors import UaError

from hal import IecType, Quality
from hal.opcua import CLIENT_POLICIES, ensure_certificate
from runtime.drivers._buffered import UNSET
from runtime.drivers._io_thread import IoThread, backoff, pause, until_first
from runtime.drivers._opcua_options import OpcuaDriverOptions, parse_node_id

__all__ = ["Binding", "OpcuaLink"]

Slot = tuple[Any, Quality, int]  # value, quality, arrival (time.monotonic_ns)
_GOOD, _UNCERTAIN, _BAD = Quality.GOOD, Quality.UNCERTAIN, Quality.BAD
_BOOL, _TEXT = ua.VariantType.Boolean, ua.VariantType.String
_INTEGERS = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1), ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1), ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1), ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1), ua.VariantType.UInt64: (0, 2**64 - 1),
}  # fmt: skip
_FLOATS = {ua.VariantType.Float, ua.VariantType.Double}


@dataclass(frozen=True)
class Binding:
    """A bound channel: the point's name (for messages) and type, and which way it goes."""

    point: str
    type: IecType
    output: bool


class _LostError(Exception):
    """The session is gone or deaf: every task of it ends, the link reconnects."""


def quality_of(status: ua.StatusCode) -> Quality:
    """OPC UA's severity bits (Good / Uncertain / Bad) as the HAL's quality."""
    if status.is_good():
        return _GOOD
    return _UNCERTAIN if status.is_uncertain() else _BAD


def _fits(iec: IecType, vtype: ua.VariantType) -> bool:
    if iec is IecType.BOOL:
        return vtype is _BOOL
    if iec is IecType.STRING:
        return vtype is _TEXT
    return vtype in _FLOATS or vtype in _INTEGERS


def _variant(value: Any, vtype: ua.VariantType) -> tuple[ua.Variant, bool]:
    """A point's output as the node's own type, and whether it had to be clamped (an integer
    node gets a rounded int within its type's range)."""
    if vtype in _INTEGERS:
        low, high = _INTEGERS[vtype]
        whole = round(value)
        return ua.Variant(min(high, max(low, whole)), vtype), not low <= whole <= high
    if vtype in _FLOATS:
        return ua.Variant(float(value), vtype), False
    if vtype is _BOOL:
        return ua.Variant(bool(value), vtype), False
    return ua.Variant(str(value), vtype), False


class OpcuaLink(IoThread):
    """One client session: inputs by subscription, outputs by Write; meets the scan in dicts.

    ``slots[channel]`` is written only here (one whole tuple per value, an atomic dict
    store under the GIL), ``outputs[channel]`` only by the scan thread. ``alive_ns`` is the
    arrival of the subscription's last publish (a change or a keep-alive): an input whose
    value did not change is still fresh while the server keeps saying so.
    """

    THREAD = "opcua-io"
    opts: OpcuaDriverOptions

    def __init__(
        self,
        opts: OpcuaDriverOptions,
        *,
        name: str,
        bindings: dict[str, Binding],
        default_ms: float,
    ) -> None:
        self.opts = opts
        self.name = name
        self.bindings = bindings
        self.default_ms = default_ms
        self.inputs = [c for c, b in bindings.items() if not b.output]
        self.slots: dict[str, Slot] = {}
        self.outputs: dict[str, Any] = {c: UNSET for c, b in bindings.items() if b.output}
        self.alive_ns = 0
        self.first_inputs = threading.Event()
        self.binding_errors: list[str] = []
        if not self.inputs:
            self.first_inputs.set()
        self.connected = threading.Event()
        self.stats: dict[str, Any] = dict.fromkeys(
            ("connects", "connect_failures", "notifications", "keepalives", "writes",
             "write_errors", "clamped_writes"), 0,
        ) | {"last_error": ""}  # fmt: skip
        # Server source timestamp → arrival here (ns), the last 10,000: the benchmark's.
        self.latency_ns: deque[int] = deque(maxlen=10_000)
        self.log = structlog.get_logger("vplc.drivers.opcua").bind(driver=name)
        self._down_logged = False
        self._vtypes: dict[str, ua.VariantType] = {}
        self._nodes: dict[str, ua.NodeId] = {}  # the channels bound in this session
        self._live: set[str] = set()  # inputs bound and monitored in this session
        self._refused: list[str] = []
        self._handles: dict[int, str] = {}

    # ------------------------------------------------------------------ thread control
    def start(self) -> None:
        # asyncua logs each request at INFO and each lost connection as an ERROR with a
        # trace; the link's own lines (opcua_down, opcua_connected) say what an operator needs.
        logging.getLogger("asyncua").setLevel(logging.CRITICAL)
        super().start()

    # ------------------------------------------------------------------ sessions
    async def _run(self, stop: asyncio.Event) -> None:
        o = self.opts
        delay = 0.0
        while not stop.is_set():
            if await pause(stop, delay):
                return
            client = Client(o.endpoint, timeout=o.timeout_s, watchdog_intervall=o.timeout_s)
            try:
                await self._connect(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats["connect_failures"] += 1
                self._down(f"connect: {_why(exc)}")
            else:
                delay = 0.0
                try:
                    await self._session(client, stop)
                except Exception as exc:
                    self._down(_why(exc))
            finally:
                self.connected.clear()
                self._all_bad()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), o.close_timeout_s)
            delay = backoff(delay, 0.1, o.reconnect_max_s)

    async def _connect(self, client: Client) -> None:
        o = self.opts
        client.application_uri = o.app_uri(self.name)
        client.session_timeout = max(10_000, round(o.stale_s(self.default_ms) * 4000))
        if o.username:
            client.set_user(o.username)
            client.set_password(o.password() or "")
        if o.security_policy != "None":
            if o.certificate is not None and o.private_key is not None:
                cert, key = o.certificate, o.private_key
            else:
                cert, key, made = ensure_certificate(
                    o.pki_dir(self.name), app_uri=client.application_uri,
                    name=f"vplc driver {self.name}", client=True,
                )  # fmt: skip
                if made:
                    self.log.info(
                        "opcua_client_certificate_created", path=str(cert),
                        hint="the server must trust it (its trusted/ folder)",
                    )  # fmt: skip
            mode = getattr(ua.MessageSecurityMode, o.security_mode)
            pinned = None if o.server_certificate is None else str(o.server_certificate)
            await client.set_security(
                CLIENT_POLICIES[o.security_policy], str(cert), str(key),
                server_certificate=pinned, mode=mode,
            )  # fmt: skip
        await client.connect()

    async def _session(self, client: Client, stop: asyncio.Event) -> None:
        o = self.opts
        wrong = await self._resolve(client)
        live = [c for c in self.inputs if c in self._nodes]
        if live:
            sub = await self._subscribe(client, live)
            wrong += self._refused
        self._bound(wrong)
        self.stats["connects"] += 1
        self.connected.set()
        self.log.info("opcua_connected", endpoint=o.endpoint, policy=o.security_policy,
                      inputs=len(live), outputs=len(self.outputs))  # fmt: skip
        self._down_logged = False
        tasks = [
            asyncio.create_task(self._writer(client)),
            asyncio.create_task(self._watch(client, bool(live))),
        ]
        if live:
            tasks.append(asyncio.create_task(self._consume(sub)))
        error = await until_first(tasks, stop)
        if stop.is_set():
            with contextlib.suppress(Exception):  # the safe values, once more
                await asyncio.wait_for(self._write_all(client, {}), o.close_timeout_s)
            return
        if error is not None:
            raise error

    def _bound(self, wrong: list[str]) -> None:
        """Channels whose node is wrong stay BAD (the others work); said once per change."""
        if wrong != self.binding_errors and wrong:
            self.log.error("opcua_binding_failed", endpoint=self.opts.endpoint,
                           error="; ".join(wrong))  # fmt: skip
        elif self.binding_errors and not wrong:
            self.log.info("opcua_binding_restored", endpoint=self.opts.endpoint)
        self.binding_errors = wrong
        if wrong:
            self.stats["last_error"] = "; ".join(wrong)
        now = time.monotonic_ns()
        for channel in self.inputs:
            if channel not in self._live:
                self.slots[channel] = (None, _BAD, now)

    async def _resolve(self, client: Client) -> list[str]:
        """NodeIds (``nsu=`` resolved now), checked to exist and carry the point's type; the
        problems, one per channel, naming the point and the NodeId."""
        o = self.opts
        uris: dict[str, int] = {}
        nodes: dict[str, ua.NodeId] = {}
        wrong: list[str] = []
        for channel in self.bindings:
            uri, nid = parse_node_id(o.channels[channel].node)
            if uri is not None:
                if uri not in uris:
                    array = await client.get_namespace_array()
                    uris = {u: i for i, u in enumerate(array)}
                if uri not in uris:
                    wrong.append(self._where(channel, f"namespace {uri!r} not on the server"))
                    continue
                nid = ua.NodeId(nid.Identifier, ua.Int16(uris[uri]), nid.NodeIdType)
            nodes[channel] = nid
        values = await client.read_attributes(
            [client.get_node(n) for n in nodes.values()], ua.AttributeIds.Value
        )
        vtypes: dict[str, ua.VariantType] = {}
        for (channel, nid), dv in zip(nodes.items(), values, strict=True):
            status = dv.StatusCode or ua.StatusCode()
            if status.value in (ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid,
                                ua.StatusCodes.BadAttributeIdInvalid):  # fmt: skip
                wrong.append(self._where(channel, f"{status.name} (NodeId {nid.to_string()})"))
                continue
            vtype = dv.Value.VariantType if dv.Value is not None else None
            binding = self.bindings[channel]
            if vtype is None or vtype is ua.VariantType.Null:
                vtype = await self._data_type(client, nid)
            if vtype is not None and not _fits(binding.type, vtype):
                wrong.append(self._where(channel, f"node {nid.to_string()} holds {vtype.name}, "
                                                  f"point type {binding.type.value}"))  # fmt: skip
                continue
            vtypes[channel] = vtype or ua.VariantType.Double
        self._nodes = {c: n for c, n in nodes.items() if c in vtypes}
        self._vtypes = vtypes
        self._live = set(self._nodes)
        return wrong

    async def _data_type(self, client: Client, nid: ua.NodeId) -> ua.VariantType | None:
        dv = (await client.read_attributes([client.get_node(nid)], ua.AttributeIds.DataType))[0]
        dtype = dv.Value.Value if dv.Value is not None else None
        if isinstance(dtype, ua.NodeId) and dtype.NamespaceIndex == 0:
            with contextlib.suppress(ValueError, TypeError):
                return ua.VariantType(int(dtype.Identifier))
        return None

    def _where(self, channel: str, what: str) -> str:
        b = self.bindings[channel]
        return (
            f"point {b.point!r} (channel {channel!r}, {self.opts.channels[channel].node}): {what}"
        )

    async def _watch(self, client: Client, subscribed: bool) -> None:
        # A closed socket, a failed watchdog read or a subscription gone deaf (no publish,
        # not even a keep-alive, for the staleness time) all end the session the same way.
        stale_ns = round(self.opts.stale_s(self.default_ms) * 1e9)
        while True:
            await asyncio.sleep(0.05)
            if client.uaclient.state.value != "connected":
                raise _LostError("connection to the server lost")
            if subscribed and time.monotonic_ns() - self.alive_ns > stale_ns:
                raise _LostError("no publish response (not even a keep-alive) from the server")

    def _down(self, why: str) -> None:
        self.stats["last_error"] = why
        if not self._down_logged:  # once per outage, not once per attempt
            self._down_logged = True
            self.log.warning("opcua_down", endpoint=self.opts.endpoint, error=why)

    def _all_bad(self) -> None:
        now = time.monotonic_ns()
        for name in self.inputs:
            old = self.slots.get(name)
            self.slots[name] = (None if old is None else old[0], _BAD, now)

    # ------------------------------------------------------------------ subscription
    async def _subscribe(self, client: Client, live: list[str]) -> Any:
        o = self.opts
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = o.publishing_for(self.default_ms)
        params.RequestedMaxKeepAliveCount = o.keepalive_count
        params.RequestedLifetimeCount = max(3 * o.keepalive_count, 30)
        params.MaxNotificationsPerPublish = 0  # no limit: a burst arrives in one response
        params.PublishingEnabled = True
        params.Priority = 0
        sub = await client.create_subscription(params, None, queue_maxsize=8 * len(live))
        self.alive_ns = time.monotonic_ns()
        requests = []
        self._handles = {}
        for channel in live:
            ch = o.channels[channel]
            mfilter = None
            if ch.deadband:
                mfilter = ua.DataChangeFilter(
                    Trigger=ua.DataChangeTrigger.StatusValue,
                    DeadbandType=ua.DeadbandType.Absolute, DeadbandValue=ch.deadband,
                )  # fmt: skip
            req = sub._make_monitored_item_request(
                client.get_node(self._nodes[channel]), ua.AttributeIds.Value, mfilter, 1,
                ua.MonitoringMode.Reporting, ua.Double(o.sampling_for(channel, self.default_ms)),
            )  # fmt: skip
            self._handles[req.RequestedParameters.ClientHandle] = channel
            requests.append(req)
        results = await sub.create_monitored_items(requests)
        self._refused = []
        for channel, r in zip(live, results, strict=True):
            if isinstance(r, ua.StatusCode):
                self._refused.append(self._where(channel, f"monitored item refused: {r.name}"))
                self._live.discard(channel)
        return sub

    async def _consume(self, sub: Any) -> None:
        queue: asyncio.Queue[Any] = sub._event_queue  # iterator mode: the events, in order
        last_seen = sub.last_publish_at
        while True:
            event = await sub.next_event(timeout=0.05)
            seen = sub.last_publish_at
            if seen != last_seen:  # a change or a keep-alive: the server is there
                last_seen = seen
                self.alive_ns = time.monotonic_ns()
                if event is None:
                    self.stats["keepalives"] += 1
            while event is not None:  # the rest of a publish response without waiting
                self._apply(event)
                if queue.empty():
                    break
                event = queue.get_nowait()
                if event is None:
                    raise _LostError("subscription closed")

    def _apply(self, event: Any) -> None:
        data = getattr(event, "data", None)
        if data is None:  # a status change of the subscription: a lost session
            status = getattr(getattr(event, "notification", None), "Status", None)
            raise _LostError(f"subscription status {status}")
        channel = self._handles.get(data.monitored_item.ClientHandle)
        if channel is None:
            return
        dv = data.monitored_item.Value
        now = time.monotonic_ns()
        quality = quality_of(dv.StatusCode or ua.StatusCode())
        value = None if dv.Value is None else dv.Value.Value
        if value is None or (isinstance(value, float) and value != value):
            quality = _BAD  # a Good status with no value is no reading
            value = None
        self.slots[channel] = (value, quality, now)
        self.stats["notifications"] += 1
        if dv.SourceTimestamp is not None:
            source_ns = round(dv.SourceTimestamp.replace(tzinfo=UTC).timestamp() * 1e9)
            self.latency_ns.append(time.time_ns() - source_ns)
        if not self.first_inputs.is_set() and len(self.slots) >= len(self.inputs):
            self.first_inputs.set()

    # ------------------------------------------------------------------ writing
    async def _writer(self, client: Client) -> None:
        last: dict[str, Any] = {}  # per session: a reconnect re-writes every output
        while True:
            await self._write_all(client, last)
            await asyncio.sleep(self.opts.write_ms / 1000)

    async def _write_all(self, client: Client, last: dict[str, Any]) -> None:
        nodes = self._nodes
        changed = [
            (c, v) for c, v in list(self.outputs.items())
            if v is not UNSET and c in nodes and (c not in last or last[c] != v)
        ]  # fmt: skip
        if not changed:
            return
        params = ua.WriteParameters()
        for channel, value in changed:
            vtype = self._vtypes[channel]
            item = ua.WriteValue()
            item.NodeId = self._nodes[channel]
            item.AttributeId = ua.AttributeIds.Value
            variant, clamped = _variant(value, vtype)
            self.stats["clamped_writes"] += clamped
            item.Value = ua.DataValue(variant)
            params.NodesToWrite.append(item)
        self.stats["writes"] += len(changed)
        try:
            results = await client.uaclient.write(params)
        except (TimeoutError, OSError, UaError, ConnectionError) as exc:
            self.stats["write_errors"] += len(changed)
            raise _LostError(f"write: {_why(exc)}") from None
        for (channel, value), status in zip(changed, results, strict=True):
            if status.is_good():
                last[channel] = value
                continue
            # The server answered and refused: sending the same value again every write_ms
            # would only repeat the refusal; the next change (or reconnect) tries again.
            last[channel] = value
            self.stats["write_errors"] += 1
            self.stats["last_error"] = f"write {channel}: {status.name}"
            self.log.warning("opcua_write_refused", point=self.bindings[channel].point,
                             node=self._nodes[channel].to_string(), status=status.name)  # fmt: skip

    def statistics(self) -> dict[str, Any]:
        return dict(self.stats) | {
            "connected": self.connected.is_set(),
            "binding_errors": list(self.binding_errors),
        }


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text

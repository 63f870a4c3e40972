"""The ``opcua`` HAL driver: Variable nodes of an external OPC UA server as points.

Each channel of ``options.channels`` names a node by its NodeId (``ns=2;s=Plant.TT101``,
``i=2258``, or ``nsu=<namespace URI>;s=...``, resolved at each connect, so a server that
renumbers its namespaces after a restart still binds). Any channel can carry an input or an
output; scaling, ranges and safe values are the point's, as for any driver.

Reading: one subscription; each input is a monitored item sampled every ``sampling_ms``
(default: the fastest task's period, which the engine hands over before ``open``) and
published every ``publishing_ms`` (default: the sampling interval). A notification's
StatusCode gives the quality (Good / Uncertain / Bad, by its severity bits); a Good status
without a value is BAD. While nothing changes the server sends keep-alives (every
``keepalive_count`` publishing intervals); an input is latched BAD by the scan itself when
neither its last notification nor the subscription's last publish (change or keep-alive)
is younger than ``staleness_s`` (default: publishing × keepalive_count + timeout_s). So a
server that dies, hangs or loses the network turns the inputs BAD within that time.

Writing: outputs are written when they change (checked every ``write_ms``, all changed ones
in one Write request, as the node's own data type), all of them after every (re)connect,
and once more on close (the safe values). A refused write (BadTypeMismatch, BadOutOfRange,
BadUserAccessDenied, ...) is logged and counted, not repeated until the value changes.

Security: the same choices as the runtime's server: SignAndEncrypt with Basic256Sha256 by
default (Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss; ``Sign``; ``None`` only with
``allow_insecure`` when a password is sent), a client application certificate made at first
start in ``$VPLC_STATE_DIR/opcua-client/<driver>/`` (the server must trust it) unless one is
given, the server's certificate optionally pinned, a user name and password login.

At connect every NodeId is checked: a node the server does not have, or of a type the point
cannot carry, is an error naming the point and the NodeId (logged once, kept in
``statistics()["binding_errors"]``); that point stays BAD (an output is not written) while the
others work, and the check is made again at every reconnect.
``read_inputs``/``write_outputs`` never block: asyncua runs on the driver's own thread and
event loop (:class:`runtime.drivers._opcua_net.OpcuaLink`); the session is re-established
with capped, jittered backoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from hal import ChannelInfo, Direction, DriverError, IecType, Point
from runtime.drivers._buffered import BufferedDriver
from runtime.drivers._opcua_net import Binding, OpcuaLink
from runtime.drivers._opcua_options import OpcuaDriverOptions

__all__ = ["OpcuaDriver", "OpcuaDriverOptions"]

_BOTH = frozenset({Direction.IN, Direction.OUT})
_DEFAULT_MS = 100.0  # sampling when nobody says (a driver opened outside an engine)


def _kind(iec: IecType) -> str:
    return "BOOL" if iec is IecType.BOOL else "STRING" if iec is IecType.STRING else "number"


class OpcuaDriver(BufferedDriver):
    """Channels declared in the options, exchanged with one server by a background thread."""

    Options: ClassVar[type[BaseModel]] = OpcuaDriverOptions  # checked by the loader
    KIND: ClassVar[str] = "opcua"

    def __init__(self, *, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        try:
            self.options = OpcuaDriverOptions.model_validate(dict(options))
        except ValidationError as exc:
            raise DriverError(f"opcua driver {name!r}: invalid options: {exc}") from None
        self._channels = {
            c: ChannelInfo(c, _BOTH, ch.type or IecType.LREAL, description=ch.node)
            for c, ch in self.options.channels.items()
        }
        self._inputs: list[tuple[Point, str, int]] = []  # point, channel, staleness ns
        self._outputs: list[tuple[Point, str]] = []
        self._bindings: dict[str, Binding] = {}
        self._link: OpcuaLink | None = None
        self._restored: dict[str, Any] = {}
        self._stale: set[str] = set()
        self.stale_events = 0
        self.period_ms = _DEFAULT_MS

    # -- Driver protocol ---------------------------------------------------------------
    def channels(self) -> Mapping[str, ChannelInfo]:
        return self._channels

    def set_scan_period(self, period_ns: int) -> None:
        """The fastest task's period: inputs are sampled that often unless the options say."""
        self.period_ms = max(1.0, period_ns / 1e6)
        self._inputs = [(p, c, self._stale_ns()) for p, c, _ in self._inputs]

    def _stale_ns(self) -> int:
        return round(float(self.options.stale_s(self.period_ms)) * 1e9)

    def bind(self, points: Sequence[tuple[Point, str]]) -> None:
        inputs: list[tuple[Point, str, int]] = []
        outputs: list[tuple[Point, str]] = []
        bindings: dict[str, Binding] = {}
        for point, channel in points:
            where = f"opcua driver {self.name!r}: point {point.name!r}"
            ch = self.options.channels.get(channel)
            if ch is None:
                raise DriverError(
                    f"{where}: no declared channel {channel!r} (channels: {sorted(self._channels)})"
                )
            if ch.type is not None and _kind(ch.type) != _kind(point.type):
                raise DriverError(
                    f"{where} of type {point.type.value} cannot carry channel {channel!r} "
                    f"({ch.type.value}, {ch.node})"
                )
            if channel in bindings:
                raise DriverError(
                    f"{where}: channel {channel!r} is already bound to point "
                    f"{bindings[channel].point!r}"
                )
            out = point.direction is Direction.OUT
            bindings[channel] = Binding(point.name, point.type, out)
            if out:
                outputs.append((point, channel))
            else:
                inputs.append((point, channel, self._stale_ns()))
        self._inputs, self._outputs, self._bindings = inputs, outputs, bindings

    def open(self) -> None:
        """Start the I/O thread; wait ≤ ``open_wait_s`` for the nodes and a first value each.

        A NodeId the server does not have is logged (``opcua_binding_failed``, naming the point
        and the NodeId) and in ``statistics()["binding_errors"]``; its point stays BAD while
        every other point works: one wrong entry does not take the controller down.
        """
        if self._link is not None:
            return
        link = OpcuaLink(
            self.options, name=self.name, bindings=self._bindings, default_ms=self.period_ms
        )
        self._start_link(link)

    @property
    def link(self) -> OpcuaLink | None:
        """The I/O side while open (latencies for benchmarks, statistics)."""
        return self._link

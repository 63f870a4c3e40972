"""The ``mqtt`` HAL driver: remote sensors and actuators over MQTT, with staleness and ownership.

Topics (``P`` = the ``prefix`` option; a channel may name its own ``topic`` instead)::

    P/sensors/<channel>    device → PLC, not retained. A plain JSON scalar (``37.2``, ``true``)
                           or ``{"v": value|null, "q": "GOOD"|"UNCERTAIN"|"BAD", "ts": ISO}``.
                           A device must republish faster than ``staleness_s``: an input
                           that hears nothing for that long is latched BAD (so are
                           retained messages, which prove nothing about liveness, and
                           undecodable payloads).
    P/actuators/<channel>  PLC → device, not retained, ``qos``. ``{"v", "ts"[, "epoch"]}``, by
                           exception every ``publish_ms``, all outputs every ``refresh_s``,
                           after each reconnect and once more on close (the safe values).
    P/owner                retained, QoS 1. ``{"epoch": int, "client", "ts"}``: an ownership
                           claim.

Ownership epoch protocol (for blue-green handover of the outputs): a driver with
``owner_epoch: N`` subscribes to ``P/owner``, waits ``owner_wait_s`` for the retained
claim, and publishes its own claim only if no higher epoch is there (so an old instance
reconnecting never overwrites a newer claim); it then tags every actuator write with
``"epoch": N``. On seeing a claim above N it is *superseded*: it stops publishing outputs and
says so in ``statistics()``. The device (e.g. ``vplc sim serve``) remembers the highest epoch
ever claimed and applies a write only if its epoch equals it; writes with a lower epoch, or
untagged ones once any claim exists, are refused and counted. Without any claim, untagged
writes are applied (no ownership in use). Epochs only grow: the deployer hands the new
instance ``old + 1``.

``read_inputs``/``write_outputs`` never block: the client runs on its own thread
(:class:`runtime.drivers._mqtt_net.MqttLink`) and the two sides meet in per-channel slots.
Connection loss needs no special case: the inputs stop arriving and turn BAD after
``staleness_s`` while the link reconnects with capped, jittered exponential backoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from hal import ChannelInfo, Direction, DriverError, IecType, Point
from runtime.drivers._buffered import BufferedDriver
from runtime.drivers._mqtt_net import MqttLink
from runtime.drivers._mqtt_options import MqttDriverOptions, direction_of

__all__ = ["MqttDriver", "MqttDriverOptions"]


def _kind(iec: IecType) -> str:
    return "BOOL" if iec is IecType.BOOL else "STRING" if iec is IecType.STRING else "number"


class MqttDriver(BufferedDriver):
    """Channels declared in the options, exchanged with a broker by a background thread."""

    Options: ClassVar[type[BaseModel]] = MqttDriverOptions  # checked by the loader
    KIND: ClassVar[str] = "mqtt"

    def __init__(self, *, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        try:
            self.options = MqttDriverOptions.model_validate(dict(options))
        except ValidationError as exc:
            raise DriverError(f"mqtt driver {name!r}: invalid options: {exc}") from None
        opts = self.options
        self._chan = opts.channel_map()
        self._channels = {
            c: ChannelInfo(c, frozenset({direction_of(ch)}), ch.type, ch.unit)
            for c, ch in self._chan.items()
        }
        # point, channel, staleness ns (only inputs are in _inputs)
        self._inputs: list[tuple[Point, str, int]] = []
        self._outputs: list[tuple[Point, str]] = []
        self._link: MqttLink | None = None
        self._restored: dict[str, Any] = {}
        self._stale: set[str] = set()
        self.stale_events = 0
        self._standby = False

    # -- Driver protocol ---------------------------------------------------------------
    def channels(self) -> Mapping[str, ChannelInfo]:
        return self._channels

    def bind(self, points: Sequence[tuple[Point, str]]) -> None:
        inputs: list[tuple[Point, str, int]] = []
        outputs: list[tuple[Point, str]] = []
        for point, channel in points:
            info = self._channels.get(channel)
            where = f"mqtt driver {self.name!r}: point {point.name!r}"
            if info is None:
                raise DriverError(
                    f"{where}: no declared channel {channel!r} (channels: {sorted(self._channels)})"
                )
            if point.direction not in info.directions:
                raise DriverError(
                    f"{where}: channel {channel!r} is declared "
                    f"'{self._chan[channel].direction}', not '{point.direction.value}'"
                )
            if _kind(point.type) != _kind(info.type):
                raise DriverError(
                    f"{where} of type {point.type.value} cannot carry channel {channel!r} "
                    f"({info.type.value}); declare the channel's type"
                )
            if point.direction is Direction.IN:
                inputs.append((point, channel, self.options.staleness_ns(channel)))
            elif any(ch == channel for _, ch in outputs):
                raise DriverError(f"{where}: output channel {channel!r} is bound twice")
            else:
                outputs.append((point, channel))
        self._inputs, self._outputs = inputs, outputs

    def open(self) -> None:
        """Start the network thread; wait ≤ ``open_wait_s`` for a first value of each input."""
        if self._link is not None:
            return
        opts = self.options
        in_topics = {
            opts.topic(ch): (ch, self._chan[ch].type) for ch in {c for _, c, _ in self._inputs}
        }
        out_topics = {ch: opts.topic(ch) for _, ch in self._outputs}
        link = MqttLink(opts, name=self.name, inputs=in_topics, outputs=out_topics)
        link.standby = self._standby
        self._start_link(link)

    # -- ownership handover (runtime.state._handover drives these) ------------------------------
    def set_standby(self) -> None:
        """Before open: read inputs and follow the owner topic, never claim or write."""
        self._standby = True

    def claim(self, epoch: int, timeout: float = 1.0) -> bool:
        """Claim the outputs with ``epoch`` now (after a restore); True once acknowledged."""
        return self._link is not None and self._link.claim_now(epoch, timeout)

    def hold(self, *, last_write: bool = True) -> None:
        """Stay silent from now on, after one last write of the current outputs if asked."""
        if self._link is not None:
            self._link.hold(last_write=last_write)

    def unhold(self) -> None:
        if self._link is not None:
            self._link.unhold()

    @property
    def superseded(self) -> bool:
        return self._link is not None and self._link.superseded

    @property
    def epoch(self) -> int | None:
        return self._link.epoch if self._link is not None else self.options.owner_epoch

    @property
    def max_epoch_seen(self) -> int | None:
        return self._link.max_epoch_seen if self._link is not None else None

    def statistics(self) -> dict[str, Any]:
        link = self._link
        base: dict[str, Any] = {
            "connected": bool(link and link.connected.is_set()),
            "stale_channels": sorted(self._stale),
            "stale_events": self.stale_events,
            "owner_epoch": self.epoch,
        }
        if link is not None:
            base |= link.statistics() | {
                "owner_claimed": link.claimed,
                "superseded": link.superseded,
                "max_epoch_seen": link.max_epoch_seen,
                "standby": link.standby,
                "held": link.held,
            }
        return base

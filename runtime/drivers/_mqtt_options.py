"""Options of the ``mqtt`` HAL driver (pydantic, unknown keys refused) and its wire payloads."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hal import Direction, IecType, Quality, coerce
from hal.mqtt import BrokerOptions
from runtime.mqtt._payloads import iso

__all__ = ["ChannelOptions", "MqttDriverOptions", "decode_input", "encode_output"]

# A topic prefix or topic may not hold wildcards: a subscription must match exactly one channel.
_TOPIC = r"^[^#+\s]+(/[^#+\s]+)*$"


class _Strict(BaseModel):
    # Finite floats only; durations bounded so that no loop spins and every timeout stays a
    # number the OS accepts.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ChannelOptions(_Strict):
    """One declared channel; an MQTT driver cannot discover what a remote device offers."""

    direction: Literal["in", "out"]
    type: IecType = IecType.LREAL
    topic: str | None = Field(
        default=None, pattern=_TOPIC, description="full topic (default: the prefix convention)"
    )
    staleness_s: float | None = Field(
        default=None, ge=0.001, le=86400, description="inputs: overrides default"
    )
    unit: str = ""

    @model_validator(mode="after")
    def _check(self) -> ChannelOptions:
        if self.staleness_s is not None and self.direction == "out":
            raise ValueError("staleness_s applies to input channels only")
        return self


class MqttDriverOptions(BrokerOptions):
    """The ``options`` of a ``type: mqtt`` driver in app.yaml (broker keys: BrokerOptions)."""

    client_id: str | None = Field(
        default=None, max_length=128, description="default: vplc-io-<driver>-<random>"
    )
    prefix: str = Field(pattern=_TOPIC, description="inputs <prefix>/sensors/<channel>, ...")
    channels: dict[str, ChannelOptions | Literal["in", "out"]] = Field(min_length=1)
    staleness_s: float = Field(
        default=2.0, ge=0.001, le=86400, description="input BAD after this silence"
    )
    qos: Literal[0, 1, 2] = 0
    publish_ms: float = Field(
        default=20.0, ge=1, le=3_600_000, description="output buffer check period"
    )
    refresh_s: float = Field(
        default=1.0, ge=0.01, le=86400, description="republish every output this often"
    )
    open_wait_s: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="open() waits this long for a first value of every input",
    )
    close_timeout_s: float = Field(
        default=1.0, ge=0, le=3600, description="final output flush on close"
    )
    reconnect_max_s: float = Field(default=10.0, ge=0.01, le=3600)
    owner_epoch: int | None = Field(
        default=None, ge=0, description="claim <prefix>/owner with this epoch and tag writes"
    )
    owner_wait_s: float = Field(
        default=0.3, ge=0, le=3600, description="wait for a retained claim before claiming"
    )

    @model_validator(mode="after")
    def _check(self) -> MqttDriverOptions:
        topics: dict[str, str] = {}
        for name, ch in self.channel_map().items():
            topic = self.topic(name)
            if topic in topics:
                raise ValueError(f"channels.{name}: topic {topic!r} also used by {topics[topic]}")
            topics[topic] = name
            if ch.type is IecType.STRING and ch.direction == "out":
                raise ValueError(f"channels.{name}: STRING outputs are not supported")
        return self

    def channel_map(self) -> dict[str, ChannelOptions]:
        """Every channel in long form (``temperature: in`` is shorthand)."""
        return {
            name: ChannelOptions(direction=ch) if isinstance(ch, str) else ch
            for name, ch in self.channels.items()
        }

    def topic(self, channel: str) -> str:
        ch = self.channels[channel]
        if isinstance(ch, ChannelOptions) and ch.topic is not None:
            return ch.topic
        direction = ch if isinstance(ch, str) else ch.direction
        kind = "sensors" if direction == "in" else "actuators"
        return f"{self.prefix}/{kind}/{channel}"

    @property
    def owner_topic(self) -> str:
        return f"{self.prefix}/owner"

    def staleness_ns(self, channel: str) -> int:
        ch = self.channel_map()[channel]
        return round((ch.staleness_s or self.staleness_s) * 1e9)


def direction_of(ch: ChannelOptions) -> Direction:
    return Direction.IN if ch.direction == "in" else Direction.OUT


def decode_input(raw: bytes, iec: IecType) -> tuple[Any, Quality]:
    """A sensor payload → (value, quality); raise ValueError/TypeError if it is garbage.

    Accepted: a plain JSON scalar (``37.2``, ``true``) or ``{"v": …, "q": "GOOD"|"UNCERTAIN"|
    "BAD", "ts": …}``; ``v: null`` means no reading (BAD).
    """
    data = json.loads(raw)
    quality = Quality.GOOD
    if isinstance(data, dict):
        q = data.get("q", "GOOD")
        if not isinstance(q, str) or q not in Quality.__members__:
            raise ValueError(f"q must be GOOD, UNCERTAIN or BAD, got {q!r}")
        quality = Quality[q]
        data = data.get("v")
    if data is None:
        return None, Quality.BAD
    value = coerce(iec, data)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite value {value!r}")
    return value, quality


def encode_output(value: Any, epoch: int | None, wall_ns: int) -> bytes:
    """An actuator payload ``{"v", "ts", ["epoch"]}``; NaN/inf travel as null (refused)."""
    if isinstance(value, float) and not math.isfinite(value):
        value = None
    body: dict[str, Any] = {"v": value, "ts": iso(wall_ns)}
    if epoch is not None:
        body["epoch"] = epoch
    return json.dumps(body, separators=(",", ":")).encode()

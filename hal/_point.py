"""HAL points: the declared spec (validated) and the live value cell the process image holds."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hal._types import Direction, IecType, Quality, coerce, default_value

Value = bool | int | float | str


class Scaling(BaseModel):
    """Linear raw↔engineering scaling, e.g. a 4–20 mA or 0–27648 count signal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw: tuple[float, float] = Field(description="raw low and high, e.g. [0, 27648]")
    eng: tuple[float, float] = Field(description="engineering low and high, e.g. [0, 150]")

    @model_validator(mode="after")
    def _span_nonzero(self) -> Scaling:
        if self.raw[0] == self.raw[1]:
            raise ValueError("raw low and high must differ")
        return self

    def to_eng(self, raw: float) -> float:
        r0, r1 = self.raw
        e0, e1 = self.eng
        return e0 + (raw - r0) * (e1 - e0) / (r1 - r0)

    def to_raw(self, eng: float) -> float:
        r0, r1 = self.raw
        e0, e1 = self.eng
        return r0 + (eng - e0) * (r1 - r0) / (e1 - e0)


class PointSpec(BaseModel):
    """What an app declares about one I/O point in its manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: IecType
    direction: Direction
    driver: str
    channel: str
    unit: str = ""
    description: str = ""
    range: tuple[float, float] | None = None
    scaling: Scaling | None = None
    safe: Value | None = None
    initial: Value | None = None

    @model_validator(mode="after")
    def _check(self) -> PointSpec:
        if self.range is not None and self.range[0] > self.range[1]:
            raise ValueError(f"range low {self.range[0]} is above high {self.range[1]}")
        if self.scaling is not None and not self.type.is_numeric:
            raise ValueError(f"scaling needs a numeric type, not {self.type.value}")
        if self.direction is Direction.OUT and self.safe is None:
            raise ValueError("an output point must declare its safe value ('safe')")
        if self.direction is Direction.IN and self.safe is not None:
            raise ValueError("'safe' applies to outputs only; inputs are read, never driven")
        for key in ("safe", "initial"):
            value = getattr(self, key)
            if value is not None:
                try:
                    coerce(self.type, value)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"'{key}': {exc}") from None
        return self

    def initial_value(self) -> Value:
        if self.initial is not None:
            return coerce(self.type, self.initial)
        if self.safe is not None:
            return coerce(self.type, self.safe)
        return default_value(self.type)


_BAD, _UNCERTAIN, _GOOD = Quality.BAD, Quality.UNCERTAIN, Quality.GOOD


def _to_int(raw: Any) -> int:
    return round(raw) if isinstance(raw, float) else int(raw)


# A driver may hand over an int for a REAL channel; apps and traces must see the declared type.
_CONVERTERS: dict[IecType, Any] = {
    IecType.BOOL: bool,
    IecType.INT: _to_int,
    IecType.DINT: _to_int,
    IecType.REAL: float,
    IecType.LREAL: float,
    IecType.STRING: str,
}


class Point:
    """The live cell of one point: value, quality, timestamp and forcing.

    Apps hold a reference to a Point and read ``.value``/``.quality`` or write ``.value``;
    attribute access on a slotted object is the cheapest thing Python offers in the hot path.
    """

    __slots__ = (
        "_conv",
        "_range",
        "_scale",
        "direction",
        "forced",
        "forced_value",
        "index",
        "name",
        "quality",
        "safe_value",
        "spec",
        "timestamp_ns",
        "type",
        "value",
    )

    def __init__(self, spec: PointSpec, index: int = 0) -> None:
        self.spec = spec
        self.name = spec.name
        self.type = spec.type
        self.direction = spec.direction
        self.index = index
        self.value: Any = spec.initial_value()
        self.quality = Quality.GOOD if spec.direction is Direction.OUT else Quality.BAD
        self.timestamp_ns = 0
        self.forced = False
        self.forced_value: Any = None
        self.safe_value: Any = None if spec.safe is None else coerce(spec.type, spec.safe)
        self._scale = spec.scaling
        self._range = spec.range
        self._conv = _CONVERTERS[spec.type]

    def latch(self, raw: Any, quality: Quality, timestamp_ns: int) -> None:
        """Store a driver's raw reading as the engineering value of this input."""
        # Runs for every input every cycle: enum members are module constants (an attribute
        # lookup on the enum class costs as much as the rest of this method), range is cached.
        if self.forced:
            self.value = self.forced_value
            self.quality = _GOOD
        elif quality is _BAD:
            self.quality = _BAD  # the value holds its last good reading
        else:
            scale = self._scale
            raw = self._conv(raw) if scale is None else self._conv(scale.to_eng(raw))
            self.value = raw
            rng = self._range
            if quality is _GOOD and rng is not None and not rng[0] <= raw <= rng[1]:
                quality = _UNCERTAIN
            self.quality = quality
        self.timestamp_ns = timestamp_ns

    def output_raw(self) -> Any:
        """The raw value a driver should write for this output (forcing wins)."""
        value = self.forced_value if self.forced else self.value
        if self._scale is not None:
            return self._scale.to_raw(value)
        return value

    def force(self, value: object) -> None:
        self.forced_value = coerce(self.type, value)
        self.forced = True
        if self.direction is Direction.IN:
            self.value = self.forced_value

    def unforce(self) -> None:
        self.forced = False
        self.forced_value = None

    def __repr__(self) -> str:
        forced = " FORCED" if self.forced else ""
        return f"<Point {self.name}={self.value!r} {self.quality.name}{forced}>"

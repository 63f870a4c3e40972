"""HAL points: the declared spec (validated) and the live value cell the process image holds."""

from __future__ import annotations

import math
import numbers
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from hal._types import (
    FLOAT_LIMITS,
    INT_LIMITS,
    Direction,
    IecType,
    OnInvalid,
    Quality,
    coerce,
    coerce_exact,
    default_value,
)

Value = bool | int | float | str


def _declared_scalar(value: object) -> object:
    # One clear error instead of one per member of the union (bool, int, float, str).
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    if not isinstance(value, bool | int | float | str):
        raise ValueError(f"expected a number, true/false or a string, not {type(value).__name__}")
    return value


# A value as a manifest declares it (safe, initial, a parameter's default): a scalar, and a
# float only when finite. NaN or ±inf would reach a controller or an actuator as a "value".
DeclaredValue = Annotated[Value, BeforeValidator(_declared_scalar)]


class Scaling(BaseModel):
    """Linear raw↔engineering scaling, e.g. a 4–20 mA or 0–27648 count signal."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    raw: tuple[float, float] = Field(description="raw low and high, e.g. [0, 27648]")
    eng: tuple[float, float] = Field(description="engineering low and high, e.g. [0, 150]")

    @model_validator(mode="after")
    def _span_nonzero(self) -> Scaling:
        # Both directions divide by a span: to_eng by the raw one, to_raw by the eng one.
        if self.raw[0] == self.raw[1]:
            raise ValueError("raw low and high must differ")
        if self.eng[0] == self.eng[1]:
            raise ValueError("eng low and high must differ")
        return self

    def to_eng(self, raw: float) -> float:
        r0, r1 = self.raw
        e0, e1 = self.eng
        return e0 + (raw - r0) * (e1 - e0) / (r1 - r0)

    def to_raw(self, eng: float) -> float:
        r0, r1 = self.raw
        e0, e1 = self.eng
        return r0 + (eng - e0) * (r1 - r0) / (e1 - e0)

    @property
    def gain(self) -> float:
        """Raw units per engineering unit."""
        return (self.raw[1] - self.raw[0]) / (self.eng[1] - self.eng[0])


def type_limits(iec: IecType) -> tuple[float, float]:
    """The lowest and highest value a numeric IEC type holds."""
    if iec.is_integer:
        return INT_LIMITS[iec]
    return FLOAT_LIMITS[iec]


class PointSpec(BaseModel):
    """What an app declares about one I/O point in its manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: IecType
    direction: Direction
    driver: str
    channel: str
    unit: str = ""
    description: str = ""
    range: tuple[float, float] | None = None
    scaling: Scaling | None = None
    safe: DeclaredValue | None = None
    initial: DeclaredValue | None = None
    on_invalid: OnInvalid | None = Field(
        default=None, description="outputs: clamp (default), hold or fault on an invalid write"
    )
    resolution: float | None = Field(
        default=None, gt=0, description="engineering-unit step telemetry rounds values to"
    )

    @model_validator(mode="after")
    def _check(self) -> PointSpec:
        if self.range is not None:
            self._check_range(self.range)
        if self.scaling is not None and not self.type.is_numeric:
            raise ValueError(f"scaling needs a numeric type, not {self.type.value}")
        if self.resolution is not None and self.type not in (IecType.REAL, IecType.LREAL):
            raise ValueError(f"resolution needs type REAL or LREAL, not {self.type.value}")
        if self.direction is Direction.OUT and self.safe is None:
            raise ValueError("an output point must declare its safe value ('safe')")
        if self.direction is Direction.IN and self.safe is not None:
            raise ValueError("'safe' applies to outputs only; inputs are read, never driven")
        if self.direction is Direction.IN and self.on_invalid is not None:
            raise ValueError("'on_invalid' applies to outputs only; programs never write inputs")
        for key in ("safe", "initial"):
            value = getattr(self, key)
            if value is not None:
                try:
                    value = coerce_exact(self.type, value)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"'{key}': {exc}") from None
                self._check_within(key, value)
        return self

    def _check_within(self, key: str, value: Value) -> None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return
        rng = self.range
        if rng is not None and not rng[0] <= value <= rng[1]:
            raise ValueError(f"'{key}' {value!r} is outside the range {list(rng)}")
        if self.direction is Direction.OUT:
            lo, hi = self.output_limits()
            if not lo <= value <= hi:  # a scaled output whose raw value would not be finite
                raise ValueError(f"'{key}' {value!r} is outside the limits {lo!r}..{hi!r}")

    def _check_range(self, rng: tuple[float, float]) -> None:
        lo, hi = rng
        if not self.type.is_numeric:
            raise ValueError(f"range needs a numeric type, not {self.type.value}")
        if lo > hi:
            raise ValueError(f"range low {lo} is above high {hi}")
        tlo, thi = type_limits(self.type)
        if lo < tlo or hi > thi:
            raise ValueError(
                f"range {list(rng)} exceeds what {self.type.value} holds ({tlo:g}..{thi:g})"
            )
        if self.type.is_integer and math.ceil(lo) > math.floor(hi):
            raise ValueError(f"range {list(rng)} holds no {self.type.value} value")

    def initial_value(self) -> Value:
        if self.initial is not None:
            return coerce(self.type, self.initial)
        if self.safe is not None:
            return coerce(self.type, self.safe)
        return default_value(self.type)

    def output_limits(self) -> tuple[Any, Any]:
        """The lowest and highest value an output may send (numeric types and BOOL).

        The declared range within the type's limits; without a range, a scaled output is
        kept where its raw value stays finite.
        """
        if self.type is IecType.BOOL:
            return False, True
        lo, hi = type_limits(self.type)
        if self.range is not None:
            lo, hi = max(lo, self.range[0]), min(hi, self.range[1])
        elif self.scaling is not None:
            bound = 1e300 / max(abs(self.scaling.gain), 1.0)
            lo, hi = max(lo, -bound), min(hi, bound)
        if self.type.is_integer:
            return math.ceil(lo), math.floor(hi)
        return float(lo), float(hi)


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
        "_limits",
        "_range",
        "_scale",
        "direction",
        "forced",
        "forced_value",
        "good",
        "index",
        "name",
        "policy",
        "quality",
        "safe_value",
        "spec",
        "timestamp_ns",
        "type",
        "users",
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
        # Outputs: the last value that passed the output check (``hold`` falls back to it),
        # the limits a write must respect, and what to do with one that does not.
        self.good: Any = self.value
        self.policy = spec.on_invalid or OnInvalid.CLAMP
        self._limits: tuple[Any, Any] | None = (
            spec.output_limits() if spec.type is not IecType.STRING else None
        )
        # Programs that asked the AppContext for this point: who can write an output.
        self.users: tuple[str, ...] = ()

    def latch(self, raw: Any, quality: Quality, timestamp_ns: int) -> None:
        """Store a driver's raw reading as the engineering value of this input."""
        # Runs for every input every cycle: enum members are module constants (an attribute
        # lookup on the enum class costs as much as the rest of this method), range is cached.
        # The sim driver inlines this for unscaled REAL/LREAL and BOOL points (sim_hardware/
        # _sampling.py, Cell): a change here goes there too (tests/sim_hardware/test_sampling.py).
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

    def judge(self, value: object) -> tuple[Any, str]:
        """An output write, coerced to the point's type: ``(value, "")`` if it may be sent.

        Otherwise ``(nearest, why)``: ``nearest`` is the closest valid value where there is
        one (an out-of-range number, or ±inf where a range is declared), else None (NaN, a
        wrong type, a BOOL of 0.7). Only the output check's slow path calls this.
        """
        iec = self.type
        if iec is IecType.STRING:
            if isinstance(value, str):
                return str(value), ""
            return None, f"{_show(value)} is not a STRING"
        if isinstance(value, bool):
            number: int | float = int(value)
        elif isinstance(value, numbers.Integral):
            number = int(value)
        elif isinstance(value, numbers.Real):
            number = float(value)
        else:
            return None, f"{_show(value)} is not a {iec.value} value"
        if iec is IecType.BOOL:
            if number == 0 or number == 1:
                return bool(number), ""
            return None, f"{_show(value)} is not a BOOL (true/false, 0 or 1)"
        assert self._limits is not None
        lo, hi = self._limits
        if isinstance(number, float) and not math.isfinite(number):
            if number != number or self._range is None:
                return None, f"{number!r} is not a finite number"
            return (hi if number > 0 else lo), f"{number!r} is not a finite number"
        if iec.is_integer:
            number = round(number)  # REAL_TO_INT: to the nearest, ties to even
        elif isinstance(number, int):
            number = float(number) if abs(number) <= hi else math.copysign(math.inf, number)
        limit = "range" if self._range is not None else iec.value
        if number < lo:
            return lo, f"{_show(value)} is below the {limit} low limit {lo!r}"
        if number > hi:
            return hi, f"{_show(value)} is above the {limit} high limit {hi!r}"
        return number, ""

    def force(self, value: object) -> None:
        """Override the point; the value must be valid for its type (and range, for outputs)."""
        forced = coerce_exact(self.type, value)
        if self._limits is not None and self.direction is Direction.OUT:
            lo, hi = self._limits
            if not lo <= forced <= hi:
                raise ValueError(
                    f"{forced!r} is outside the limits of output {self.name} ({lo!r}..{hi!r})"
                )
        self.forced_value = forced
        self.forced = True
        if self.direction is Direction.IN:
            self.value = self.forced_value

    def unforce(self) -> None:
        self.forced = False
        self.forced_value = None

    def __repr__(self) -> str:
        forced = " FORCED" if self.forced else ""
        return f"<Point {self.name}={self.value!r} {self.quality.name}{forced}>"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}…"

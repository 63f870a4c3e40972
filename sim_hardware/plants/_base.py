"""The Plant base class every simulated process derives from, and its signal table."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hal import ChannelInfo, Direction, IecType
from sim_hardware.components import Motor, Pump, Valve

__all__ = ["Actuator", "Plant", "PlantError", "PlantParams", "Signal"]

Actuator = Valve | Pump | Motor


class PlantError(ValueError):
    """A plant refused a parameter, an initial value or a channel name."""


class PlantParams(BaseModel):
    """Base of every plant's parameter model: unknown keys and NaN/inf are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class Signal:
    """One plant channel: a sensor (direction IN) or an actuator command (direction OUT).

    ``lo``/``hi`` is the instrument range (a reading saturates there; a command is clamped
    there) and ``noise`` the standard deviation of the measurement noise in ``unit``.
    """

    name: str
    direction: Direction
    unit: str
    lo: float
    hi: float
    description: str
    noise: float = 0.0
    type: IecType = IecType.LREAL

    def info(self) -> ChannelInfo:
        return ChannelInfo(
            name=self.name,
            directions=frozenset({self.direction}),
            type=self.type,
            unit=self.unit,
            description=f"{self.description} [{self.lo:g}..{self.hi:g} {self.unit}]".replace(
                " ]", "]"
            ),
            range=(self.lo, self.hi) if self.type is not IecType.BOOL else None,
        )


class Plant(ABC):
    """A deterministic process model advanced by ``step(dt)`` in seconds of plant time.

    Subclasses declare ``kind`` (registry name), ``Params`` (a :class:`PlantParams`),
    ``signals`` (the channel table) and ``utilities`` (supplies a fault can cut, e.g.
    cooling water). ``read``/``write`` exchange *true* values; measurement noise and sensor
    faults are the driver's business, so a plant can be stepped and inspected in tests
    without either.
    """

    kind: ClassVar[str]
    Params: ClassVar[type[PlantParams]]
    signals: ClassVar[tuple[Signal, ...]]
    utilities: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        params: PlantParams | Mapping[str, Any] | None = None,
        initial: Mapping[str, float] | None = None,
    ) -> None:
        if isinstance(params, PlantParams):
            if not isinstance(params, self.Params):
                raise PlantError(f"{self.kind}: params must be {self.Params.__name__}")
            self.params = params
        else:
            try:
                self.params = self.Params.model_validate(dict(params or {}))
            except ValidationError as exc:
                raise PlantError(f"{self.kind} params: {exc}") from None
        self.time = 0.0
        self.utility_ok: dict[str, bool] = dict.fromkeys(self.utilities, True)
        self.signal_map: dict[str, Signal] = {s.name: s for s in self.signals}
        self._build()
        self._readers = self.readers()
        if initial:
            self._apply_initial(initial)

    # -- subclass hooks ---------------------------------------------------------------
    @abstractmethod
    def _build(self) -> None:
        """Create components and the default state from ``self.params``."""

    @abstractmethod
    def initial_keys(self) -> dict[str, str]:
        """State names that ``initial`` may override, with unit and meaning."""

    def initial_ranges(self) -> dict[str, tuple[float, float]]:
        """The range each ``initial`` value must lie in; by default the range of the sensor
        channel of the same name. A plant declares its physical bounds where they differ."""
        keys = self.initial_keys()
        return {s.name: (s.lo, s.hi) for s in self.signals if s.name in keys}

    @abstractmethod
    def _set_initial(self, key: str, value: float) -> None: ...

    @abstractmethod
    def step(self, dt: float) -> None:
        """Advance the process by ``dt`` seconds (explicit Euler; keep dt ≤ ~1 s)."""

    @abstractmethod
    def readers(self) -> dict[str, Callable[[], float | bool]]:
        """Sensor channel → a function returning its true value (the driver caches these)."""

    @abstractmethod
    def actuators(self) -> dict[str, Actuator]:
        """Output channel → the component it commands."""

    @abstractmethod
    def _state(self) -> dict[str, float]: ...

    @abstractmethod
    def _load_state(self, state: Mapping[str, float]) -> None: ...

    # -- common API -------------------------------------------------------------------
    def channels(self) -> dict[str, ChannelInfo]:
        return {s.name: s.info() for s in self.signals}

    def read(self, channel: str) -> float | bool:
        """The true (noise-free) value of a sensor channel."""
        return self.reader(channel)()

    def reader(self, channel: str) -> Callable[[], float | bool]:
        try:
            return self._readers[channel]
        except KeyError:
            raise PlantError(self._unknown(channel, Direction.IN)) from None

    def values_reader(self, channels: Sequence[str]) -> Callable[[], list[float | bool]]:
        """A function returning the true values of ``channels``, in order, in one call.

        The driver reads its analogue channels through it every cycle. This default calls the
        per-channel readers; a plant may serve the list from its state in one go, as long as it
        returns what those readers would (and, like them, keeps working after ``restore``).
        """
        readers = [self.reader(ch) for ch in channels]
        return lambda: [read() for read in readers]

    def bools_reader(self, channels: Sequence[str]) -> Callable[[], list[Any]]:
        """A function returning the true values of the BOOL ``channels``, in order, in one call.

        What ``values_reader`` is for the analogue channels; the default calls the readers.
        """
        readers = [self.reader(ch) for ch in channels]
        return lambda: [read() for read in readers]

    def write(self, channel: str, value: float | bool) -> None:
        """Command an actuator channel; the value is clamped to the channel range."""
        try:
            self.actuators()[channel].set(float(value))
        except KeyError:
            raise PlantError(self._unknown(channel, Direction.OUT)) from None

    def actuator(self, channel: str) -> Actuator:
        try:
            return self.actuators()[channel]
        except KeyError:
            raise PlantError(self._unknown(channel, Direction.OUT)) from None

    def set_utility(self, utility: str, available: bool) -> None:
        if utility not in self.utility_ok:
            known = ", ".join(self.utilities) or "none"
            raise PlantError(f"{self.kind} has no utility {utility!r}; utilities: {known}")
        self.utility_ok[utility] = available

    def snapshot(self) -> dict[str, Any]:
        """The whole plant state as JSON-able data (params included, to catch mix-ups)."""
        return {
            "kind": self.kind,
            "params": self.params.model_dump(mode="json"),
            "time": self.time,
            "state": self._state(),
            "actuators": {k: a.snapshot() for k, a in self.actuators().items()},
            "utilities": dict(self.utility_ok),
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        if snap.get("kind") != self.kind:
            raise PlantError(f"snapshot is of plant {snap.get('kind')!r}, not {self.kind!r}")
        self.params = self.Params.model_validate(snap["params"])
        self._build()
        self.time = float(snap["time"])
        self._load_state(snap["state"])
        for name, comp in self.actuators().items():
            comp.restore(snap["actuators"][name])
        self.utility_ok = {k: bool(v) for k, v in snap["utilities"].items()}

    def _apply_initial(self, initial: Mapping[str, float]) -> None:
        keys = self.initial_keys()
        for key in initial:
            if key not in keys:
                raise PlantError(
                    f"{self.kind}: unknown initial state {key!r}; known: {', '.join(keys)}"
                )
        ranges = self.initial_ranges()
        # applied in the plant's declared order, because some values derive from others
        for key in (k for k in keys if k in initial):
            value = initial[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PlantError(f"{self.kind}: initial {key!r} must be a number")
            if not math.isfinite(value):
                raise PlantError(f"{self.kind}: initial {key!r} must be finite")
            lo, hi = ranges.get(key, (-math.inf, math.inf))
            if not lo <= value <= hi:
                raise PlantError(
                    f"{self.kind}: initial {key!r} = {value:g} is outside its range "
                    f"{lo:g}..{hi:g} ({keys[key].split(' (', 1)[0]})"
                )
            self._set_initial(key, float(value))

    def _unknown(self, channel: str, direction: Direction) -> str:
        names = [s.name for s in self.signals if s.direction is direction]
        return f"{self.kind} has no {direction.value} channel {channel!r}; known: {names}"

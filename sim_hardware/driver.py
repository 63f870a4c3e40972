"""SimDriver: a simulated plant behind the ordinary HAL Driver protocol, with noise and faults."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hal import ChannelInfo, Direction, DriverError, IecType, Point, Quality
from sim_hardware._fastgauss import INLINE_GAUSS
from sim_hardware._fault_effects import (
    Input,
    apply_actuator_faults,
    check_fault,
    measure,
    sensor_effects,
)
from sim_hardware._sampling import Analog, Binary, Output, measure_clean, write_commands
from sim_hardware.faults import SENSOR_FAULT_KINDS, Fault, parse_fault
from sim_hardware.plants import Plant, PlantError, get_plant_class

__all__ = ["SimDriver", "SimOptions"]

_SNAPSHOT_VERSION = 1


class SimOptions(BaseModel):
    """The ``options`` of a ``type: sim`` driver in an app manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    plant: str = Field("bioreactor", description="registered plant name: bioreactor, tank")
    seed: int = Field(0, description="seed of the measurement-noise generator")
    params: dict[str, Any] = Field(default_factory=dict, description="plant parameters")
    initial: dict[str, float] = Field(default_factory=dict, description="initial state")
    noise: bool = Field(True, description="add Gaussian measurement noise")
    # ≥ 1 ms: a shorter substep makes the plant integrate a million times per simulated second.
    max_step_s: float = Field(1.0, ge=0.001, le=10, description="longest integration substep")
    faults: list[Fault] = Field(default_factory=list, description="scheduled faults")

    @model_validator(mode="after")
    def _plant_params(self) -> SimOptions:
        # Checked here, not when the plant is built, so that a misspelt plant parameter is
        # reported at its own path (``params.<name>``) like every other option.
        try:
            params_model = get_plant_class(self.plant).Params
        except PlantError as exc:
            raise ValueError(f"plant: {exc}") from None
        try:
            params_model.model_validate(self.params)
        except ValidationError as exc:
            errors = exc.errors()
            first = errors[0]
            loc = ".".join(str(part) for part in ("params", *first["loc"]))
            if first["type"] == "extra_forbidden":
                known = ", ".join(params_model.model_fields)
                what = f"{self.plant} has no such parameter (parameters: {known})"
            else:
                what = f"{first['msg']} (got {first['input']!r})"
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise ValueError(f"{loc}: {what}{more}") from None
        return self


def _converter(point: Point) -> Callable[[Any], Any] | None:
    """How a reading becomes the point's Python type (None: already a float)."""
    if point.type is IecType.BOOL:
        return bool
    if point.type.is_integer:
        return lambda v: round(float(v))
    return None


class SimDriver:
    """Integrates its plant up to each ``read_inputs(now_ns)`` and latches noisy readings.

    Plant time starts at 0 on the first ``read_inputs`` and advances by the differences of
    ``now_ns`` between calls (a clock that jumps backwards re-anchors without stepping), in
    equal substeps no longer than ``max_step_s``. Same seed and same calls ⇒ same readings.

    A transmitter has one output value at one instant: a second ``read_inputs`` at the same
    ``now_ns`` (two tasks released together) keeps the readings latched by the first instead
    of drawing new noise for an unchanged plant. Injecting or clearing a fault, or a restore,
    measures again. An input unforced between the two keeps its forced value until the next
    instant.
    """

    # Readings are clamped to the channel's range and a NaN/inf true value raises DriverError.
    finite_inputs = True
    Options: ClassVar[type[BaseModel]] = SimOptions  # checked by the loader at its YAML path

    def __init__(self, *, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        try:
            self.options = SimOptions.model_validate(dict(options))
        except ValidationError as exc:
            raise DriverError(f"sim driver {name!r}: invalid options: {exc}") from None
        opts = self.options
        try:
            cls = get_plant_class(opts.plant)
            self._plant: Plant = cls(params=opts.params, initial=opts.initial)
        except PlantError as exc:
            raise DriverError(f"sim driver {name!r}: {exc}") from None
        self._rng = random.Random(opts.seed)
        self._noise = opts.noise
        self._max_step_ns = max(1, int(opts.max_step_s * 1e9))
        self._last_ns: int | None = None
        self._measured_ns: int | None = None  # the instant the points hold readings of
        self._t_ns = 0
        self._inputs: list[Input] = []
        self._analog: list[Analog] = []
        self._read_analog: Callable[[], list[Any]] = list  # nothing bound: no values
        self._read_bools: Callable[[], list[Any]] = list
        self._bools: list[Binary] = []
        self._analog_channels: list[str] = []
        self._outputs: list[tuple[Point, str]] = []
        self._wired: list[Output] = []
        self._wired_for: object = None
        self._faults: list[Fault] = []
        self._fstate: list[dict[str, Any]] = []
        self._steps = 0
        self._open = False
        for fault in opts.faults:
            self.inject(fault)

    # -- Driver protocol ---------------------------------------------------------------
    @property
    def plant(self) -> Plant:
        return self._plant

    def channels(self) -> Mapping[str, ChannelInfo]:
        return self._plant.channels()

    def bind(self, points: Sequence[tuple[Point, str]]) -> None:
        sigs = self._plant.signal_map
        inputs: dict[str, list[tuple[Point, Callable[[Any], Any] | None]]] = {}
        outputs: list[tuple[Point, str]] = []
        for point, channel in points:
            sig = sigs.get(channel)
            if sig is None:
                raise DriverError(
                    f"sim driver {self.name!r}: point {point.name!r} is bound to unknown "
                    f"channel {channel!r}; {self._plant.kind} channels: {self._listing()}"
                )
            if sig.direction is not point.direction:
                raise DriverError(
                    f"sim driver {self.name!r}: point {point.name!r} is an "
                    f"{point.direction.value.upper()} point but channel {channel!r} is "
                    f"{sig.direction.value}-only; {self._plant.kind} channels: {self._listing()}"
                )
            if point.type is IecType.STRING or (
                point.type is IecType.BOOL and sig.type is not IecType.BOOL
            ):
                raise DriverError(
                    f"sim driver {self.name!r}: point {point.name!r} of type "
                    f"{point.type.value} cannot carry channel {channel!r} ({sig.type.value})"
                )
            if point.direction is Direction.IN:
                inputs.setdefault(channel, []).append((point, _converter(point)))
            else:
                if any(ch == channel for _, ch in outputs):
                    raise DriverError(
                        f"sim driver {self.name!r}: output channel {channel!r} is bound "
                        f"twice (point {point.name!r}); an actuator has one writer"
                    )
                outputs.append((point, channel))
        self._inputs = [
            (ch, self._plant.reader(ch), sigs[ch].type is IecType.BOOL, sigs[ch], pts)
            for ch, pts in inputs.items()
        ]
        # The same inputs pre-digested for the fault-free path (hundreds of channels per cycle
        # on a plant-scale app): analogue (noise std, lo, hi, points) with one reader for all
        # their true values, then BOOL.
        self._analog = [
            Analog(std=sig.noise if self._noise else 0.0, lo=sig.lo, hi=sig.hi, points=pts)
            for _, _, is_bool, sig, pts in self._inputs
            if not is_bool
        ]
        self._bools = [Binary(pts) for _, _, is_bool, _, pts in self._inputs if is_bool]
        self._read_bools = self._plant.bools_reader(
            [ch for ch, _, is_bool, _, _ in self._inputs if is_bool]
        )
        self._analog_channels = [ch for ch, _, is_bool, _, _ in self._inputs if not is_bool]
        self._read_analog = self._plant.values_reader(self._analog_channels)
        self._outputs = outputs
        self._wired_for = None  # rewire on the next write
        self._measured_ns = None  # new points hold no readings yet

    def rebind(self, points: Sequence[tuple[Point, str]]) -> None:
        """Replace the binding while open (an online change adding or removing points): the
        plant model reads any of its channels, so nothing needs to be set up."""
        self.bind(points)

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def read_inputs(self, now_ns: int) -> None:
        if now_ns == self._measured_ns:
            return
        last = self._last_ns
        self._last_ns = now_ns
        if last is not None and now_ns > last:
            self._advance(now_ns - last)
        self._measure(now_ns)
        self._measured_ns = now_ns

    def write_outputs(self, now_ns: int) -> None:
        # Points are paired with their actuators' ``set`` once; the pairing is redone when the
        # plant's actuator table is a new one (a plant restore rebuilds its parts).
        actuators = self._plant.actuators()
        if actuators is not self._wired_for:
            self._wired = [Output(p, actuators[ch].set) for p, ch in self._outputs]
            self._wired_for = actuators
        write_commands(self._wired)

    # -- faults --------------------------------------------------------------------------
    def inject(self, fault: Fault | Mapping[str, Any]) -> Fault:
        """Schedule a fault (``start_s`` is plant time; 0 means now if already running)."""
        try:
            f = parse_fault(fault)
        except ValidationError as exc:
            raise DriverError(f"sim driver {self.name!r}: invalid fault: {exc}") from None
        self.check_fault(f)
        self._faults.append(f)
        self._fstate.append({"on": False, "held": None})
        self._measured_ns = None
        return f

    def check_fault(self, fault: Fault) -> None:
        """Raise DriverError if ``fault`` does not fit this plant (what ``inject`` checks)."""
        check_fault(self._plant, fault, f"sim driver {self.name!r}: fault {fault.kind!r}")

    def clear_faults(self, channel: str | None = None) -> int:
        """Remove all faults, or those on ``channel`` (or utility); return how many."""
        keep = [
            (f, s)
            for f, s in zip(self._faults, self._fstate, strict=True)
            if channel is not None and f.target != channel
        ]
        removed = len(self._faults) - len(keep)
        self._faults = [f for f, _ in keep]
        self._fstate = [s for _, s in keep]
        self._measured_ns = None
        apply_actuator_faults(self._plant, self._faults, self._fstate, self._plant.time, True)
        return removed

    @property
    def faults(self) -> list[Fault]:
        return list(self._faults)

    def active_faults(self) -> list[Fault]:
        t = self._plant.time
        return [f for f in self._faults if f.active(t)]

    # -- integration and measurement -------------------------------------------------------
    def _advance(self, delta_ns: int) -> None:
        max_ns = self._max_step_ns
        n = 1 if delta_ns <= max_ns else -(-delta_ns // max_ns)
        dt = delta_ns / n * 1e-9
        plant = self._plant
        faults = self._faults
        if faults and any(f.kind not in SENSOR_FAULT_KINDS for f in faults):
            for _ in range(n):
                apply_actuator_faults(plant, faults, self._fstate, plant.time, False)
                plant.step(dt)
        elif n == 1:  # the usual call; a loop for one step would cost a third of this method
            plant.step(dt)
        else:
            for _ in range(n):
                plant.step(dt)
        self._steps += n
        self._t_ns = t_ns = self._t_ns + delta_ns
        plant.time = t_ns * 1e-9

    def _measure(self, now_ns: int) -> None:
        if not self._faults and INLINE_GAUSS:
            values = self._read_analog()
            bools = self._read_bools()
            bad = measure_clean(self._analog, values, self._bools, bools, self._rng, now_ns)
            if bad >= 0:
                self._diverged(self._analog_channels[bad])
            return
        t = self._plant.time
        effects = sensor_effects(self._faults, self._fstate, t) if self._faults else None
        channel = measure(self._inputs, effects, self._rng, self._noise, now_ns)
        if channel:
            self._diverged(channel)

    def _diverged(self, channel: str) -> None:
        plant = self._plant
        raise DriverError(
            f"sim driver {self.name!r}: the {plant.kind} model diverged: channel {channel!r} "
            f"is {plant.read(channel)!r} at plant time {plant.time:.3f} s (the readings are "
            "not trustworthy from here on; check the plant parameters and initial state)"
        )

    # -- state -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        version, internal, gauss_next = self._rng.getstate()
        return {
            "version": _SNAPSHOT_VERSION,
            "plant": self._plant.snapshot(),
            "rng": [version, list(internal), gauss_next],
            "t_ns": self._t_ns,
            "last_ns": self._last_ns,
            "steps": self._steps,
            "faults": [f.model_dump(mode="json") for f in self._faults],
            "fault_state": [dict(s) for s in self._fstate],
            # the readings the points hold, so a restored driver continues the same instant
            "measured_ns": self._measured_ns,
            "readings": {
                p.name: [p.value, int(p.quality)] for *_, pts in self._inputs for p, _ in pts
            },
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != _SNAPSHOT_VERSION:
            raise DriverError(f"sim driver {self.name!r}: unknown snapshot version")
        try:
            self._plant.restore(state["plant"])
        except PlantError as exc:
            raise DriverError(f"sim driver {self.name!r}: {exc}") from None
        version, internal, gauss_next = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss_next))
        self._t_ns = int(state["t_ns"])
        self._last_ns = None if state["last_ns"] is None else int(state["last_ns"])
        self._steps = int(state["steps"])
        self._faults = [parse_fault(f) for f in state["faults"]]
        self._fstate = [dict(s) for s in state["fault_state"]]
        self._restore_readings(state.get("measured_ns"), state.get("readings") or {})

    def _restore_readings(self, measured_ns: int | None, readings: Mapping[str, Any]) -> None:
        """Put back the readings of the snapshot's instant, or measure afresh if any is missing."""
        self._measured_ns = None
        points = [p for *_, pts in self._inputs for p, _ in pts]
        if measured_ns is None or not points or any(p.name not in readings for p in points):
            return
        for p in points:
            value, quality = readings[p.name]
            if not p.forced:
                p.value = value
                p.quality = Quality(quality)
            p.timestamp_ns = int(measured_ns)
        self._measured_ns = int(measured_ns)

    def statistics(self) -> dict[str, Any]:
        return {
            "plant": self._plant.kind,
            "plant_time_s": self._plant.time,
            "substeps": self._steps,
            "faults": len(self._faults),
            "active_faults": [f.kind + ":" + f.target for f in self.active_faults()],
        }

    def _listing(self) -> str:
        return ", ".join(f"{s.name} ({s.direction.value})" for s in self._plant.signals)

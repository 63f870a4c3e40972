"""The ``memory`` driver: channels held in a dict, for tests, soft-wiring and dry runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from hal._driver import ChannelInfo, DriverError
from hal._point import Point
from hal._types import Direction, Quality

_DIRS = {
    "in": frozenset({Direction.IN}),
    "out": frozenset({Direction.OUT}),
    "inout": frozenset({Direction.IN, Direction.OUT}),
}


class MemoryOptions(BaseModel):
    """``channels``: name → in/out/inout; ``initial``: starting channel values."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    channels: dict[str, Literal["in", "out", "inout"]]
    initial: dict[str, Any] = {}


class MemoryDriver:
    """Inputs latch ``values[channel]``; outputs store into ``values[channel]``.

    Tests set ``values``/``qualities`` between cycles and read what outputs wrote; the
    ``writes`` counter shows how many output publications happened.
    """

    Options: ClassVar[type[BaseModel]] = MemoryOptions  # checked by the loader

    def __init__(self, *, name: str, options: Mapping[str, Any]) -> None:
        opts = MemoryOptions.model_validate(dict(options))
        self.name = name
        self._channels = {c: ChannelInfo(c, _DIRS[d]) for c, d in opts.channels.items()}
        unknown = set(opts.initial) - set(opts.channels)
        if unknown:
            raise DriverError(f"initial values for undeclared channel(s) {sorted(unknown)}")
        self.values: dict[str, Any] = {c: 0.0 for c in opts.channels} | dict(opts.initial)
        self.qualities: dict[str, Quality] = {c: Quality.GOOD for c in opts.channels}
        self._inputs: list[tuple[Point, str]] = []
        self._outputs: list[tuple[Point, str]] = []
        self.writes = 0
        self.is_open = False

    def channels(self) -> Mapping[str, ChannelInfo]:
        return self._channels

    def bind(self, points: Sequence[tuple[Point, str]]) -> None:
        for point, channel in points:
            info = self._channels.get(channel)
            if info is None:
                raise DriverError(
                    f"point {point.name!r}: no channel {channel!r} "
                    f"(channels: {sorted(self._channels)})"
                )
            if point.direction not in info.directions:
                raise DriverError(
                    f"point {point.name!r}: channel {channel!r} does not allow "
                    f"direction {point.direction.value!r}"
                )
            (self._inputs if point.direction is Direction.IN else self._outputs).append(
                (point, channel)
            )

    def rebind(self, points: Sequence[tuple[Point, str]]) -> None:
        """Replace the binding (between cycles, also while open): dicts, nothing to subscribe."""
        inputs, outputs = self._inputs, self._outputs
        self._inputs, self._outputs = [], []
        try:
            self.bind(points)
        except DriverError:
            self._inputs, self._outputs = inputs, outputs
            raise

    def open(self) -> None:
        self.is_open = True

    def read_inputs(self, now_ns: int) -> None:
        values, qualities = self.values, self.qualities
        for point, channel in self._inputs:
            point.latch(values[channel], qualities[channel], now_ns)

    def write_outputs(self, now_ns: int) -> None:
        for point, channel in self._outputs:
            self.values[channel] = point.output_raw()
        self.writes += 1

    def close(self) -> None:
        self.is_open = False

    def snapshot(self) -> dict[str, Any]:
        return {"values": dict(self.values)}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.values.update(state["values"])

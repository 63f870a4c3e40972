"""The process image: all points of an app, grouped by direction and by driver."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hal._point import Point, PointSpec
from hal._types import Direction


class ProcessImage:
    """Holds the Point cells; programs read inputs and write outputs here between latches."""

    __slots__ = ("_by_name", "inputs", "outputs", "points")

    def __init__(self, specs: Iterable[PointSpec]) -> None:
        self._index([Point(spec, i) for i, spec in enumerate(specs)])

    @classmethod
    def of(cls, points: Iterable[Point]) -> ProcessImage:
        """An image over existing cells (an online change keeps the cells drivers and programs
        hold, and adds or leaves out others)."""
        image = cls.__new__(cls)
        image._index(list(points))
        return image

    def _index(self, points: list[Point]) -> None:
        self.points = points
        self._by_name = {p.name: p for p in self.points}
        if len(self._by_name) != len(self.points):
            raise ValueError("duplicate point name in process image")
        self.inputs = [p for p in self.points if p.direction is Direction.IN]
        self.outputs = [p for p in self.points if p.direction is Direction.OUT]

    def __getitem__(self, name: str) -> Point:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points)

    def __len__(self) -> int:
        return len(self.points)

    def apply_safe(self) -> list[str]:
        """Drive every output to its safe value; return the output forces this lifted.

        A forced output would otherwise keep driving the plant in STOP or FAULT, which no
        safety review accepts, so forcing of outputs does not survive a safe-state transition.
        """
        lifted = []
        for p in self.outputs:
            if p.forced:
                lifted.append(p.name)
                p.unforce()
            p.value = p.safe_value
        return lifted

    def forced(self) -> list[Point]:
        return [p for p in self.points if p.forced]

"""The Driver protocol every I/O backend implements, simulated or real."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from hal._point import Point
from hal._types import Direction, IecType


class DriverError(Exception):
    """A driver refused its configuration or failed; the message names the channel."""


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What a driver offers on one channel: direction(s) and the natural type."""

    name: str
    directions: frozenset[Direction]
    type: IecType = IecType.LREAL
    unit: str = ""
    description: str = ""
    # What the device accepts or reports, where the driver knows it (engineering units):
    # a safe or initial value of an output outside it is refused when the app is loaded.
    range: tuple[float, float] | None = None


@runtime_checkable
class Driver(Protocol):
    """An I/O backend bound to a set of points.

    Lifecycle: ``channels()`` (what can be bound) → ``bind(points)`` → ``open()`` →
    per cycle ``read_inputs(now_ns)`` / ``write_outputs(now_ns)`` → ``close()``.
    ``read_inputs`` and ``write_outputs`` run on the scan thread and must never block:
    a network driver exchanges data with its own thread through double buffers.

    Optional: ``rebind(points)`` replaces the whole binding of an open driver between two
    cycles (an online change that adds or removes points); a driver without it cannot, and
    such a change is refused with that reason.

    A driver may set ``finite_inputs = True`` when it never latches NaN or ±inf into a REAL
    input (it raises DriverError instead): test benches then skip their own per-cycle check.

    Options: the driver class (the factory registered under its type name) declares the
    pydantic model of its manifest ``options`` as the class attribute ``Options``
    (``extra="forbid"``, ``allow_inf_nan=False``). The loader validates a manifest's options
    against it before constructing the driver, so every problem is reported at its YAML path
    (``at drivers.<name>.options.<key>: …``) by ``vplc validate`` as well as ``vplc run``.
    """

    name: str

    def channels(self) -> Mapping[str, ChannelInfo]: ...

    def bind(self, points: Sequence[tuple[Point, str]]) -> None: ...

    def open(self) -> None: ...

    def read_inputs(self, now_ns: int) -> None: ...

    def write_outputs(self, now_ns: int) -> None: ...

    def close(self) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


class DriverFactory(Protocol):
    """Creates a driver from the ``options`` mapping of the manifest.

    A factory should carry ``Options``, the pydantic model of those options (see Driver).
    """

    def __call__(self, *, name: str, options: Mapping[str, Any]) -> Driver: ...

"""The scan's side of a network driver's double buffer: latch the I/O thread's input slots,
hand outputs over, keep the last outputs across a snapshot and restore."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from hal import DriverError, Point, Quality

__all__ = ["UNSET", "BufferedDriver"]

UNSET: Any = object()  # an output the scan has not written yet: nothing to send


class BufferedDriver:
    """Shared by the drivers whose I/O runs in their own thread (``mqtt``, ``modbus``, ``opcua``).

    The link (built by the driver's ``open``) holds ``slots`` (channel → value, quality,
    monotonic arrival) and ``outputs`` (channel → value or UNSET), and stops with ``stop``.
    """

    KIND: ClassVar[str]  # for messages: "mqtt driver 'x'"
    name: str
    options: Any  # its close_timeout_s bounds close(), its open_wait_s open()
    _link: Any
    _inputs: list[tuple[Point, str, int]]  # point, channel, stale after (ns)
    _outputs: list[tuple[Point, str]]
    _channels: Mapping[str, Any]
    _restored: dict[str, Any]
    _stale: set[str]
    stale_events: int

    def _start_link(self, link: Any) -> None:
        """Hand a new link the restored outputs and start it; then wait ≤ ``open_wait_s`` for
        a first value of each input (off the scan's clock, before the epoch: the scan does not
        start against all-BAD inputs)."""
        for channel, value in self._restored.items():
            if channel in link.outputs:
                link.outputs[channel] = value
        self._link = link
        link.start()
        link.first_inputs.wait(self.options.open_wait_s)

    def statistics(self) -> dict[str, Any]:
        link = self._link
        base: dict[str, Any] = {
            "stale_channels": sorted(self._stale),
            "stale_events": self.stale_events,
        }
        return base | (link.statistics() if link is not None else {"connected": False})

    def read_inputs(self, now_ns: int) -> None:
        link = self._link
        slots = link.slots if link is not None else {}
        mono = time.monotonic_ns()
        # A link may say its peer is alive without a new value (an OPC UA keep-alive): an
        # unchanged input is fresh as long as that; 0 for links without such a signal.
        alive = getattr(link, "alive_ns", 0)
        bad = Quality.BAD
        for point, channel, stale_ns in self._inputs:
            slot = slots.get(channel)
            if slot is None or mono - max(slot[2], alive) > stale_ns:
                if channel not in self._stale:
                    self._stale.add(channel)
                    self.stale_events += 1
                point.latch(point.value, bad, now_ns)
                continue
            if self._stale:
                self._stale.discard(channel)
            value, quality, _ = slot
            point.latch(point.value if value is None else value, quality, now_ns)

    def write_outputs(self, now_ns: int) -> None:
        link = self._link
        if link is None:
            return
        out = link.outputs
        for point, channel in self._outputs:
            out[channel] = point.output_raw()

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.stop(self.options.close_timeout_s)

    def snapshot(self) -> dict[str, Any]:
        """The last output values handed to the I/O thread (what a handover starts from)."""
        link = self._link
        current = link.outputs if link is not None else self._restored
        return {"outputs": {c: v for c, v in current.items() if v is not UNSET}}

    def restore(self, state: Mapping[str, Any]) -> None:
        outputs = state.get("outputs", {})
        unknown = set(outputs) - set(self._channels)
        if unknown:
            raise DriverError(f"{self.KIND} driver {self.name!r}: snapshot names {sorted(unknown)}")
        self._restored = dict(outputs)

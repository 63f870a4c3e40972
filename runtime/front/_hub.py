"""One shared-memory frame and one writer hook per engine, however many front-ends read it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from runtime.core._handles import Handle
from runtime.front._probes import engine_alarms
from runtime.front._shm import SharedFrame
from runtime.front._writer import FrameWriter, Layout, Side

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["Feed", "FrameHub", "frame_hub"]

_HUBS: dict[int, FrameHub] = {}  # by id(engine); a hub leaves when its last feed closes
_LOCK = threading.Lock()


def frame_hub(engine: ScanEngine) -> FrameHub:
    """The engine's hub (created on first use)."""
    with _LOCK:
        hub = _HUBS.get(id(engine))
        if hub is None or hub.engine is not engine:
            hub = _HUBS[id(engine)] = FrameHub(engine)
        return hub


class Feed:
    """One front-end's subscription: where the frame is, its layout, its own text queue."""

    def __init__(self, hub: FrameHub, side: Side, sample_ns: int) -> None:
        self.hub, self.side, self.sample_ns = hub, side, sample_ns
        frame = hub.frame
        assert frame is not None
        self.shm_name = frame.name
        self.n_points, self.n_alarms = frame.n_points, frame.n_alarms
        self.closed = False

    def layout(self) -> Layout:
        """The frame's slots by index, bound to the running version (what a child is told)."""
        writer = self.hub.writer
        assert writer is not None, "a closed feed has no frame"
        return writer.layout()

    def resend_texts(self) -> None:
        """Every text again at the next sample (a new child knows none of them)."""
        self.side.queue.clear()
        self.side.overflowed = False
        writer = self.hub.writer
        if writer is not None:
            writer.resend_texts()  # the other readers get them twice: texts are states

    def write_now(self) -> None:
        """Store one frame now; only while the scan is not running (its own hook writes)."""
        self.hub.write_now()

    def statistics(self) -> dict[str, Any]:
        writer = self.hub.writer
        stats = writer.statistics() if writer is not None else {}
        return stats | {"side_queued": len(self.side.queue), "side_dropped": self.side.dropped}

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub.unsubscribe(self)


class FrameHub:
    """The scan pays for one FrameWriter per engine: the MQTT bridge, the OPC UA server and
    any other process front-end read the same seqlocked frame, each with its own text queue,
    at the period of the fastest of them."""

    def __init__(self, engine: ScanEngine) -> None:
        self.engine = engine
        self.frame: SharedFrame | None = None
        self.writer: FrameWriter | None = None
        self.feeds: list[Feed] = []
        self._hook = Handle(lambda: None)
        self._write_lock = threading.Lock()

    def subscribe(self, sample_ns: int) -> Feed:
        """A feed sampled at least every ``sample_ns`` of app time."""
        with _LOCK:
            side = Side()
            if self.writer is None:
                engine = self.engine
                frame = SharedFrame(len(engine.image.points), len(engine_alarms(engine)))
                writer = FrameWriter(engine, frame, sample_ns=sample_ns)
                writer.sides = (side,)
                self.frame, self.writer = frame, writer
                # A first frame (and every text) now, while the writer has no hook yet, so
                # no second writer: a child never serves the zeros of a block nobody wrote,
                # even before the scan's next cycle or while it stands in STOP.
                writer.write(engine.now_ns)
                self._hook = engine.add_cycle_hook(writer)
            else:
                self.writer.sides = (*self.writer.sides, side)
            feed = Feed(self, side, sample_ns)
            self.feeds.append(feed)
            self._retime()
            return feed

    def unsubscribe(self, feed: Feed) -> None:
        with _LOCK:
            if feed in self.feeds:
                self.feeds.remove(feed)
            writer, frame = self.writer, self.frame
            if writer is None or frame is None:
                return
            writer.sides = tuple(s for s in writer.sides if s is not feed.side)
            if self.feeds:
                self._retime()
                return
            self._hook.remove()
            self.writer = self.frame = None
            frame.close()
            if _HUBS.get(id(self.engine)) is self:
                del _HUBS[id(self.engine)]

    def write_now(self) -> None:
        with self._write_lock:
            writer = self.writer
            if writer is not None and not self.engine.running:
                writer.write(self.engine.now_ns)

    def _retime(self) -> None:
        writer = self.writer
        assert writer is not None
        fastest = min(f.sample_ns for f in self.feeds)
        if fastest < writer.sample_ns:
            writer.next_sample_ns = 0  # the faster reader's first frame at the next cycle
        writer.sample_ns = fastest

"""A seqlocked shared-memory frame of the process image, written by the scan, read by the bridge."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from typing import Any

__all__ = ["Frame", "SharedFrame"]

# Header: seq u64 @0 (odd while the writer is inside a frame), app time i64 @8, state u8 @16.
_HEADER = 24
ALARM_FIELDS = 8  # ACTIVE, UNACKED, SEVERITY, HH, H, L, LL, BAD (TEXT goes by pipe)


@dataclass(frozen=True, slots=True)
class Frame:
    """One consistent copy of the shared block, decoded."""

    seq: int
    now_ns: int
    state: int
    floats: list[float]  # every slot read as float64
    ints: list[int]  # the same slots read as int64 (integer and BOOL points)
    quality: list[int]
    forced: list[int]
    alarms: list[int]  # ALARM_FIELDS per alarm


class SharedFrame:
    """Fixed layout for ``n_points`` values and ``n_alarms`` alarm summaries, with a seqlock.

    One writer (the scan thread) bumps ``seq`` to odd, stores the values and bumps it to
    even; a reader copies the whole block and keeps the copy only if ``seq`` was even and
    unchanged around the copy, so it never sees a torn frame and the writer never waits.
    Stores go through memoryviews (plain memcpy, no allocation); x86 keeps stores in order,
    and each store is a separate C call the compiler cannot move across (weakly ordered
    CPUs would need fences). Value slots are 8 bytes, read as float64 or int64 by type, so
    integer points stay exact.
    """

    def __init__(self, n_points: int, n_alarms: int, name: str | None = None) -> None:
        self.n_points, self.n_alarms = n_points, n_alarms
        self.o_values = _HEADER
        self.o_quality = self.o_values + 8 * n_points
        self.o_forced = self.o_quality + n_points
        self.o_alarms = (self.o_forced + n_points + 3) // 4 * 4
        self.size = self.o_alarms + 4 * ALARM_FIELDS * n_alarms
        self.owner = name is None
        self.shm = SharedMemory(name=name, create=self.owner, size=self.size)
        self.name = self.shm.name
        buf = self.shm.buf
        assert buf is not None
        self._buf: memoryview = buf
        self._seq = buf[0:8].cast("Q")
        self._now = buf[8:16].cast("q")
        self._state = buf[16:17]
        self.f64 = buf[self.o_values : self.o_quality].cast("d")
        self.i64 = buf[self.o_values : self.o_quality].cast("q")
        self.quality = buf[self.o_quality : self.o_forced]
        self.forced = buf[self.o_forced : self.o_forced + n_points]
        self.alarms = buf[self.o_alarms : self.size].cast("i")
        self._views: list[memoryview[Any]] = [
            self._seq,
            self._now,
            self._state,
            self.f64,
            self.i64,
            self.quality,
            self.forced,
            self.alarms,
        ]
        self._written = int(self._seq[0]) & ~1
        self.last_seq = -1
        self.retries = 0

    # ------------------------------------------------------------------ writer (scan thread)
    def begin(self, now_ns: int, state: int) -> None:
        self._written += 1
        self._seq[0] = self._written  # odd: readers discard what they copy now
        self._now[0] = now_ns
        self._state[0] = state

    def end(self) -> None:
        if self._written & 1:
            self._written += 1
            self._seq[0] = self._written

    # ------------------------------------------------------------------ reader (bridge)
    def peek_seq(self) -> int:
        """The writer's frame counter now (odd mid-frame): one 8-byte load, so a reader can
        look for a new frame often and copy the whole block only when there is one."""
        return int(self._seq[0])

    def read(self, *, attempts: int = 100) -> Frame | None:
        """A consistent frame, or None after ``attempts`` copies all raced the writer."""
        buf = self._buf
        for _ in range(attempts):
            s1 = self._seq[0]
            if not s1 & 1:
                raw = bytes(buf[: self.size])
                if self._seq[0] == s1:
                    return self._decode(s1, raw)
            self.retries += 1
            time.sleep(0)  # a writer mid-frame needs the CPU (or the GIL) to finish
        return None

    def _decode(self, seq: int, raw: bytes) -> Frame:
        view = memoryview(raw)
        values = view[self.o_values : self.o_quality]
        self.last_seq = seq
        return Frame(
            seq=seq,
            now_ns=view[8:16].cast("q")[0],
            state=raw[16],
            floats=list(values.cast("d").tolist()),
            ints=values.cast("q").tolist(),
            quality=list(raw[self.o_quality : self.o_forced]),
            forced=list(raw[self.o_forced : self.o_forced + self.n_points]),
            alarms=view[self.o_alarms : self.size].cast("i").tolist(),
        )

    def close(self) -> None:
        """Release the views and the mapping; the creating side also unlinks the block."""
        for view in self._views:
            view.release()
        self._views.clear()
        self.shm.close()
        if self.owner:
            with contextlib.suppress(FileNotFoundError):
                self.shm.unlink()

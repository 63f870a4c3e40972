"""Shared by every version of the real-time test app: when each cycle's program started."""

from __future__ import annotations

STARTS: list[tuple[int, int]] = []  # (ctx.now_ns, time.monotonic_ns() at program start)

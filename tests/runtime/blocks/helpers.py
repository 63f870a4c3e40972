"""Virtual time for block tests: a CycleContext moved by hand, in milliseconds."""

from __future__ import annotations

from runtime.core._fb import CycleContext


class VClock:
    """Owns one CycleContext; ``at(ms)`` advances it to an absolute time and returns it."""

    def __init__(self) -> None:
        self.ctx = CycleContext("test")
        self.ms = 0

    def at(self, ms: int) -> CycleContext:
        assert self.ctx.cycle == 0 or ms >= self.ms, "virtual time must not run backwards"
        self.ms = ms
        self.ctx.advance(ms * 1_000_000)
        return self.ctx

    def step(self, ms: int) -> CycleContext:
        return self.at(self.ms + ms if self.ctx.cycle else ms)

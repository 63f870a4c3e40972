"""IEC 61131-3 timers TON, TOF and TP, driven only by the cycle context's clock."""

from __future__ import annotations

from runtime.core._fb import CycleContext, FunctionBlock

__all__ = ["TOF", "TON", "TP"]

# Why integer nanoseconds for the start time: ``(now_ns - start_ns) / 1e9`` is exact for whole
# milliseconds, so a 5 s timer started at 0.1 s fires at 5.1 s and not one cycle late because
# 5.1 - 0.1 == 4.999999999999999 in floating point.
#
# PT changed while timing: the elapsed time is compared with the *current* PT on every call
# while the timer runs (as CODESYS does): a shorter PT ends the timing at once if it has already
# elapsed, a longer PT extends it. Once the timing has finished (TON: Q went TRUE, TOF: Q went
# FALSE, TP: the pulse ended) it stays finished until the next edge of IN; ET then reads PT.


class TON(FunctionBlock):
    """On-delay: Q goes TRUE once IN has been TRUE for PT seconds; IN FALSE resets Q and ET.

    IN already TRUE on the first call counts as a rising edge (the edge memory starts FALSE),
    so timing starts on that call.
    """

    INPUTS = {"IN": False, "PT": 0.0}
    OUTPUTS = {"Q": False, "ET": 0.0}
    STATE = {"M": False, "START_NS": 0}
    CLOCK_VARS = ("START_NS",)  # an app-time stamp: retained as an age (runtime.state)

    IN: bool
    PT: float
    Q: bool
    ET: float
    M: bool
    START_NS: int

    def execute(self, ctx: CycleContext) -> None:
        if not self.IN:
            self.Q = False
            self.ET = 0.0
            self.M = False
            return
        now_ns: int = ctx.now_ns
        if not self.M:
            self.M = True
            self.START_NS = now_ns
        if self.Q:
            self.ET = self.PT
            return
        elapsed = (now_ns - self.START_NS) / 1e9
        if elapsed >= self.PT:
            self.Q = True
            self.ET = self.PT
        else:
            self.ET = elapsed


class TOF(FunctionBlock):
    """Off-delay: Q follows IN up at once and stays TRUE for PT seconds after IN falls.

    Q starts FALSE: IN FALSE on the first call is not a falling edge and starts no timing.
    After the delay ET holds PT until IN is TRUE again, which resets ET to 0.
    """

    INPUTS = {"IN": False, "PT": 0.0}
    OUTPUTS = {"Q": False, "ET": 0.0}
    STATE = {"M": False, "RUNNING": False, "EXPIRED": False, "START_NS": 0}
    CLOCK_VARS = ("START_NS",)

    IN: bool
    PT: float
    Q: bool
    ET: float
    M: bool
    RUNNING: bool
    EXPIRED: bool
    START_NS: int

    def execute(self, ctx: CycleContext) -> None:
        if self.IN:
            self.Q = True
            self.ET = 0.0
            self.M = True
            self.RUNNING = False
            self.EXPIRED = False
            return
        if self.M:
            self.M = False
            self.RUNNING = True
            self.START_NS = ctx.now_ns
        if self.RUNNING:
            now_ns: int = ctx.now_ns
            elapsed = (now_ns - self.START_NS) / 1e9
            if elapsed >= self.PT:
                self.RUNNING = False
                self.EXPIRED = True
                self.Q = False
                self.ET = self.PT
            else:
                self.ET = elapsed
        elif self.EXPIRED:
            self.ET = self.PT


class TP(FunctionBlock):
    """Pulse: a rising edge of IN gives a Q pulse of exactly PT seconds; not retriggerable.

    Edges of IN during the pulse are ignored. After the pulse ET holds PT while IN stays TRUE
    and returns to 0 when IN is FALSE. IN TRUE on the first call is a rising edge.
    """

    INPUTS = {"IN": False, "PT": 0.0}
    OUTPUTS = {"Q": False, "ET": 0.0}
    STATE = {"M": False, "START_NS": 0}
    CLOCK_VARS = ("START_NS",)

    IN: bool
    PT: float
    Q: bool
    ET: float
    M: bool
    START_NS: int

    def execute(self, ctx: CycleContext) -> None:
        rising = self.IN and not self.M
        self.M = self.IN
        if not self.Q and rising:
            self.Q = True
            self.START_NS = ctx.now_ns
        if self.Q:
            now_ns: int = ctx.now_ns
            elapsed = (now_ns - self.START_NS) / 1e9
            if elapsed >= self.PT:
                self.Q = False
                self.ET = self.PT if self.IN else 0.0
            else:
                self.ET = elapsed
        elif self.IN:
            self.ET = self.PT
        else:
            self.ET = 0.0

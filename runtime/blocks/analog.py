"""Analogue signal blocks: RAMP rate limiter, HYSTERESIS switch, LIMIT clamp, SCALE mapping."""

from __future__ import annotations

from runtime.core._fb import CycleContext, FunctionBlock

__all__ = ["HYSTERESIS", "LIMIT", "RAMP", "SCALE"]


class RAMP(FunctionBlock):
    """Rate limiter: OUT moves towards IN at most RATE_UP / RATE_DOWN units per second.

    Rates are positive magnitudes; a rate <= 0 means "no limit" in that direction. RESET makes
    OUT follow IN without ramping; SET (below RESET in priority) forces OUT to SET_VAL, from
    where ramping continues. The first call starts at OUT = IN. BUSY: OUT has not reached IN.
    """

    INPUTS = {
        "IN": 0.0,
        "RATE_UP": 0.0,
        "RATE_DOWN": 0.0,
        "RESET": False,
        "SET": False,
        "SET_VAL": 0.0,
    }
    OUTPUTS = {"OUT": 0.0, "BUSY": False}
    STATE = {"INIT": False}

    IN: float
    RATE_UP: float
    RATE_DOWN: float
    RESET: bool
    SET: bool
    SET_VAL: float
    OUT: float
    BUSY: bool
    INIT: bool

    def execute(self, ctx: CycleContext) -> None:
        target = self.IN
        if self.RESET or not self.INIT:
            self.INIT = True
            self.OUT = target
        elif self.SET:
            self.OUT = self.SET_VAL
        else:
            out = self.OUT
            dt: float = ctx.dt
            if not dt > 0.0:
                dt = 0.0
            if target > out:
                up = self.RATE_UP * dt
                out = target if self.RATE_UP <= 0.0 or target - out <= up else out + up
            elif target < out:
                down = self.RATE_DOWN * dt
                out = target if self.RATE_DOWN <= 0.0 or out - target <= down else out - down
            self.OUT = out
        self.BUSY = target != self.OUT


class HYSTERESIS(FunctionBlock):
    """Two-point switch: Q goes TRUE when IN > HIGH, FALSE when IN < LOW, else holds."""

    INPUTS = {"IN": 0.0, "HIGH": 0.0, "LOW": 0.0}
    OUTPUTS = {"Q": False}

    IN: float
    HIGH: float
    LOW: float
    Q: bool

    def execute(self, ctx: CycleContext) -> None:
        if self.IN > self.HIGH:
            self.Q = True
        elif self.IN < self.LOW:
            self.Q = False


class LIMIT(FunctionBlock):
    """IEC LIMIT(MN, IN, MX): OUT is IN clamped to MN..MX (MX wins if MN > MX, as min(max()))."""

    INPUTS = {"MN": 0.0, "IN": 0.0, "MX": 0.0}
    OUTPUTS = {"OUT": 0.0}

    MN: float
    IN: float
    MX: float
    OUT: float

    def execute(self, ctx: CycleContext) -> None:
        self.OUT = min(max(self.IN, self.MN), self.MX)


class SCALE(FunctionBlock):
    """Linear map of IN_MIN..IN_MAX onto OUT_MIN..OUT_MAX (either range may be inverted).

    CLAMP limits OUT to the output range. A zero-width input range gives OUT_MIN and sets
    ERROR instead of dividing by zero.
    """

    INPUTS = {
        "IN": 0.0,
        "IN_MIN": 0.0,
        "IN_MAX": 1.0,
        "OUT_MIN": 0.0,
        "OUT_MAX": 1.0,
        "CLAMP": False,
    }
    OUTPUTS = {"OUT": 0.0, "ERROR": False}

    IN: float
    IN_MIN: float
    IN_MAX: float
    OUT_MIN: float
    OUT_MAX: float
    CLAMP: bool
    OUT: float
    ERROR: bool

    def execute(self, ctx: CycleContext) -> None:
        span = self.IN_MAX - self.IN_MIN
        if span == 0.0:
            self.ERROR = True
            self.OUT = self.OUT_MIN
            return
        self.ERROR = False
        out = self.OUT_MIN + (self.IN - self.IN_MIN) * (self.OUT_MAX - self.OUT_MIN) / span
        if self.CLAMP:
            lo, hi = self.OUT_MIN, self.OUT_MAX
            if lo > hi:
                lo, hi = hi, lo
            out = hi if out > hi else lo if out < lo else out
        self.OUT = out

"""Process and equipment alarms: T, pH, DO limits, high level, feed-pump failure, pH drift."""

from __future__ import annotations

from hal import Quality
from runtime import AppContext, BoolGlobal, CycleContext, Program, RealIn, RealOut, RealParam
from runtime.blocks import ALARM, TON

_BAD = Quality.BAD  # a module constant: Quality.BAD costs an enum lookup per use in the hot path


class Alarms(Program):
    """Low limits arm only in GROW (heat-up from 25 °C would otherwise alarm every batch).

    ``unit`` prefixes point, parameter and global names (``R3`` → ``R3_TT101``).
    """

    VARS = {"ph_prev": 7.0, "ph_rate": 0.0}
    ph_prev: float
    ph_rate: float

    tt, ph, do, lt = RealIn("TT101"), RealIn("AT201"), RealIn("AT301"), RealIn("LT401")
    feed_cmd, feed_flow = RealOut("P701F"), RealIn("FT701")  # the batch writes the feed pump
    temp_sp, ph_sp = RealParam("temp_sp"), RealParam("ph_sp")
    growing = BoolGlobal("growing")  # set by the batch: GROW under control

    def __init__(self, app: AppContext, *, unit: str = "") -> None:
        pre = f"{unit}_" if unit else ""
        super().__init__(app, prefix=pre)
        # Each analogue alarm is wired to the measurement it watches: a call reads it.
        self.temp = ALARM(
            IN=self.tt,
            TEXT=f"{pre}TT101 broth temperature",
            DEADBAND=0.2,
            DELAY=10.0,
            H_EN=True,
            HH_EN=True,
            LATCH=True,
        )
        self.ph_alarm = ALARM(
            IN=self.ph, TEXT=f"{pre}AT201 pH", DEADBAND=0.02, DELAY=30.0, LATCH=True
        )
        self.do_alarm = ALARM(
            IN=self.do,
            TEXT=f"{pre}AT301 dissolved oxygen",
            L=20.0,
            LL=10.0,
            DEADBAND=2.0,
            DELAY=30.0,
            LATCH=True,
        )
        self.level = ALARM(
            IN=self.lt,
            TEXT=f"{pre}LT401 vessel level",
            H=90.0,
            HH=95.0,
            H_EN=True,
            HH_EN=True,
            DEADBAND=1.0,
            DELAY=5.0,
            LATCH=True,
        )
        self.feed_fail = ALARM(
            TEXT=f"{pre}P701F feed pump: no flow while commanded", H=0.5, H_EN=True, LATCH=True
        )
        self.feed_nf = TON(PT=30.0)
        self.ph_drift = ALARM(
            TEXT=f"{pre}AT201 pH drifting (rate check)", H=0.5, H_EN=True, LATCH=True
        )
        self.drift_on = TON(PT=60.0)

    # Hot path: ``call`` on the blocks passes keywords without building a dict (Cython).
    def execute(self, ctx: CycleContext) -> None:
        grow = self.growing.value
        sp = self.temp_sp.value
        self.temp.call(
            ctx,
            H=sp + 1.0,
            HH=sp + 2.0,
            L=sp - 1.0,
            LL=sp - 2.0,
            L_EN=grow,
            LL_EN=grow,
            BAD=self.tt.quality is _BAD,
        )
        psp = self.ph_sp.value
        self.ph_alarm.call(
            ctx,
            H=psp + 0.2,
            L=psp - 0.2,
            H_EN=grow,
            L_EN=grow,
            BAD=self.ph.quality is _BAD,
        )
        self.do_alarm.call(ctx, L_EN=grow, LL_EN=grow, BAD=self.do.quality is _BAD)
        self.level.call(ctx, BAD=self.lt.quality is _BAD)
        self.feed_nf.call(ctx, IN=self.feed_cmd.value > 5.0 and self.feed_flow.value < 0.05)
        self.feed_fail.call(ctx, IN=1.0 if self.feed_nf.Q else 0.0)
        self._ph_rate(ctx, grow)

    def _ph_rate(self, ctx: CycleContext, grow: bool) -> None:
        # A controlled pH that keeps moving one way for a minute at > 0.1 pH/h while the loop
        # holds its setpoint points at a drifting probe, not at the process.
        if ctx.dt > 0.0:
            raw = (self.ph.value - self.ph_prev) / ctx.dt * 3600.0
            k = ctx.dt / 120.0  # a first-order filter of 2 min (a comparison, not min())
            self.ph_rate += (raw - self.ph_rate) * (k if k < 1.0 else 1.0)
        self.ph_prev = self.ph.value
        self.drift_on.call(ctx, IN=grow and abs(self.ph_rate) > 0.1)
        self.ph_drift.call(ctx, IN=1.0 if self.drift_on.Q else 0.0)

"""The batch as an ISA-88 phase: FILL → HEAT → GROW → HARVEST inside RUNNING."""

from __future__ import annotations

from runtime import AppContext, CycleContext, Program
from runtime.blocks import HYSTERESIS, PHASE, TON

FILL, HEAT, GROW, HARVEST, DONE = "FILL", "HEAT", "GROW", "HARVEST", "DONE"


class Batch(Program):
    """Sequence logic; the loops program reads ``control_on`` and ``step`` from here.

    ``unit`` prefixes the point and parameter names (``R3`` → ``R3_WT401``, ``R3_temp_sp``).
    """

    # step_time counts seconds spent RUNNING in the step (dt summed, not a start timestamp):
    # app time restarts at 0 with every runtime, so a retained timestamp would be meaningless
    # after a warm restart, while a retained duration carries over.
    VARS = {"step": FILL, "step_time": 0.0, "control_on": False, "batches": 0}
    step: str
    step_time: float
    control_on: bool
    batches: int

    def __init__(self, app: AppContext, *, unit: str = "") -> None:
        super().__init__(app)
        pre = f"{unit}_" if unit else ""
        self.phase = PHASE()
        self.in_band = TON()
        self.feed_hyst = HYSTERESIS()
        self.volume = app.point(pre + "WT401")
        self.temp = app.point(pre + "TT101")
        self.glucose = app.point(pre + "AT502")
        self.fill = app.point(pre + "XV401F")
        self.feed = app.point(pre + "P701F")
        self.harvest = app.point(pre + "P401H")
        # One attribute per parameter: a dict lookup by name every cycle is avoidable work.
        self.temp_sp = app.param(pre + "temp_sp")
        self.fill_target = app.param(pre + "fill_target_l")
        self.heat_band = app.param(pre + "heat_band_c")
        self.heat_settle = app.param(pre + "heat_settle_s")
        self.grow_duration = app.param(pre + "grow_duration_h")
        self.feed_on = app.param(pre + "feed_on_glucose_g_l")
        self.feed_off = app.param(pre + "feed_off_glucose_g_l")
        self.feed_pct = app.param(pre + "feed_pct")
        self.harvest_end = app.param(pre + "harvest_end_l")
        self.auto_start = app.param(pre + "auto_start")

    def execute(self, ctx: CycleContext) -> None:
        phase = self.phase
        if ctx.first_scan and self.auto_start.value and phase.STATE_NAME == "IDLE":
            phase.command("START")
        # PHASE is pure Python: set inputs and execute, rather than build a kwargs dict.
        phase.DONE = self.step == DONE
        phase.AUTO_COMPLETE_ACTING = True
        phase.execute(ctx)
        state = phase.STATE_NAME
        if state == "IDLE" and phase.STATE_ENTRY:
            self._goto(FILL, ctx)
        if phase.STATE_ENTRY and state == "RUNNING" and self.step == DONE:
            self._goto(FILL, ctx)
        # Loops keep conditions through HOLD; STOP/ABORT/COMPLETE hand the plant to safe values.
        self.control_on = state in ("RUNNING", "HOLDING", "HELD", "RESTARTING")
        if state == "RUNNING":
            self._run_step(ctx)  # writes fill, feed and harvest itself
        else:
            self.fill.value = self.feed.value = self.harvest.value = 0.0

    def _goto(self, step: str, ctx: CycleContext) -> None:
        self.step = step
        self.step_time = 0.0
        if step == DONE:
            self.batches += 1

    def _run_step(self, ctx: CycleContext) -> None:
        self.step_time += ctx.dt
        step = self.step
        fill = feed = harvest = 0.0
        if step == FILL:
            if self.volume.value >= self.fill_target.value:
                self._goto(HEAT, ctx)
            fill = 100.0
        elif step == HEAT:
            near = abs(self.temp.value - self.temp_sp.value) < self.heat_band.value
            self.in_band.call(ctx, IN=near, PT=self.heat_settle.value)
            if self.in_band.Q:
                self._goto(GROW, ctx)
        elif step == GROW:
            # Feed by glucose with hysteresis: on below the low mark, off above the high mark.
            self.feed_hyst.call(
                ctx,
                IN=-self.glucose.value,
                HIGH=-self.feed_on.value,
                LOW=-self.feed_off.value,
            )
            if self.step_time >= self.grow_duration.value * 3600.0:
                self._goto(HARVEST, ctx)
            feed = self.feed_pct.value if self.feed_hyst.Q else 0.0
        elif step == HARVEST:
            if self.volume.value <= self.harvest_end.value:
                self._goto(DONE, ctx)
            harvest = 100.0
        self.fill.value = fill
        self.feed.value = feed
        self.harvest.value = harvest

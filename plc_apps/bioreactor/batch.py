"""The batch as an ISA-88 phase: FILL → HEAT → GROW → HARVEST inside RUNNING."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from runtime import (
    AppContext,
    BoolGlobal,
    BoolParam,
    CycleContext,
    Program,
    RealIn,
    RealOut,
    RealParam,
    migration,
)
from runtime.blocks import HYSTERESIS, PHASE, TON, PhaseCommand, PhaseState


class Step(StrEnum):
    """The steps of the batch inside RUNNING (``batch.step`` holds the plain name)."""

    FILL = "FILL"
    HEAT = "HEAT"
    GROW = "GROW"
    HARVEST = "HARVEST"
    DONE = "DONE"


# Members as module constants: on Python 3.11 every ``Step.GROW`` costs an enum attribute
# lookup (~80 ns), a module constant compares as fast as a plain string.
FILL, HEAT, GROW, HARVEST, DONE = Step.FILL, Step.HEAT, Step.GROW, Step.HARVEST, Step.DONE
_IDLE, _RUNNING = PhaseState.IDLE, PhaseState.RUNNING
_START = PhaseCommand.START
# Loops keep conditions through HOLD; STOP/ABORT/COMPLETE hand the plant to safe values.
_CONTROLLED = frozenset(
    (PhaseState.RUNNING, PhaseState.HOLDING, PhaseState.HELD, PhaseState.RESTARTING)
)


class Batch(Program):
    """Sequence logic; it sets the globals ``control_on`` (the loops run) and ``growing``
    (GROW under control: the alarms arm their low limits).

    ``unit`` prefixes the point, parameter and global names (``R3`` → ``R3_WT401``,
    ``R3_temp_sp``, ``R3_control_on``).
    """

    # step_time counts seconds spent RUNNING in the step (dt summed, not a start timestamp):
    # app time restarts at 0 with every runtime, so a retained timestamp would be meaningless
    # after a warm restart, while a retained duration carries over.
    VARS = {"step": FILL.value, "step_time": 0.0, "batches": 0}
    step: str
    step_time: float
    batches: int

    volume, temp, glucose = RealIn("WT401"), RealIn("TT101"), RealIn("AT502")
    fill, feed, harvest = RealOut("XV401F"), RealOut("P701F"), RealOut("P401H")
    temp_sp = RealParam("temp_sp")
    fill_target = RealParam("fill_target_l")
    heat_band = RealParam("heat_band_c")
    heat_settle = RealParam("heat_settle_s")
    grow_duration = RealParam("grow_duration_h")
    feed_on = RealParam("feed_on_glucose_g_l")
    feed_off = RealParam("feed_off_glucose_g_l")
    feed_pct = RealParam("feed_pct")
    harvest_end = RealParam("harvest_end_l")
    auto_start = BoolParam("auto_start")
    control_on = BoolGlobal("control_on")
    growing = BoolGlobal("growing")

    def __init__(self, app: AppContext, *, unit: str = "") -> None:
        super().__init__(app, prefix=f"{unit}_" if unit else "")
        self.phase = PHASE()
        self.in_band = TON()
        self.feed_hyst = HYSTERESIS()

    def execute(self, ctx: CycleContext) -> None:
        phase = self.phase
        if ctx.first_scan and self.auto_start.value and phase.STATE_NAME == _IDLE:
            phase.command(_START)
        # PHASE is pure Python: set inputs and execute, rather than build a kwargs dict.
        phase.DONE = self.step == DONE
        phase.AUTO_COMPLETE_ACTING = True
        phase.execute(ctx)
        state = phase.STATE_NAME
        if state == _IDLE and phase.STATE_ENTRY:
            self._goto(FILL)
        if phase.STATE_ENTRY and state == _RUNNING and self.step == DONE:
            self._goto(FILL)
        on = state in _CONTROLLED
        self.control_on.value = on
        if state == _RUNNING:
            self._run_step(ctx)  # writes fill, feed and harvest itself
        else:
            self.fill.value = self.feed.value = self.harvest.value = 0.0
        self.growing.value = on and self.step == GROW

    def _goto(self, step: Step) -> None:
        self.step = step.value  # a plain str, as retained and merged
        self.step_time = 0.0
        if step is DONE:
            self.batches += 1

    def _run_step(self, ctx: CycleContext) -> None:
        self.step_time += ctx.dt
        step = self.step
        fill = feed = harvest = 0.0
        if step == FILL:
            if self.volume.value >= self.fill_target.value:
                self._goto(HEAT)
            fill = 100.0
        elif step == HEAT:
            near = abs(self.temp.value - self.temp_sp.value) < self.heat_band.value
            self.in_band.call(ctx, IN=near, PT=self.heat_settle.value)
            if self.in_band.Q:
                self._goto(GROW)
        elif step == GROW:
            # Feed by glucose with hysteresis: on below the low mark, off above the high mark.
            self.feed_hyst.call(
                ctx,
                IN=-self.glucose.value,
                HIGH=-self.feed_on.value,
                LOW=-self.feed_off.value,
            )
            if self.step_time >= self.grow_duration.value * 3600.0:
                self._goto(HARVEST)
            feed = self.feed_pct.value if self.feed_hyst.Q else 0.0
        elif step == HARVEST:
            if self.volume.value <= self.harvest_end.value:
                self._goto(DONE)
            harvest = 100.0
        self.fill.value = fill
        self.feed.value = feed
        self.harvest.value = harvest


# Version 1.0.0 kept control_on as a variable of the batch program (``batch.control_on``,
# ``R3_batch.control_on`` in plant10); from 1.1.0 the loops and alarms read globals instead.
_OLD_CONTROL_ON = re.compile(r"^(?:\w*_)?batch\.control_on$")


@migration(below="1.1.0")  # later versions have the globals: online changes stay fast
def migrate(old_version: str, state: dict[str, Any]) -> dict[str, Any]:
    """State of an older version → this one (warm start, online change, snapshot restore).

    ``<pre>batch.control_on`` becomes ``globals.<pre>control_on``, and ``globals.<pre>growing``
    is derived from it and the step, as the batch computes it after every cycle. Anything
    else, and any state that has no such path (this version's own), passes unchanged.
    """
    for path in [p for p in state if _OLD_CONTROL_ON.match(p)]:
        pre = path[: -len("batch.control_on")]
        on = bool(state.pop(path))
        state[f"globals.{pre}control_on"] = on
        step = state.get(f"{pre}batch.step")
        if step is not None:
            state[f"globals.{pre}growing"] = on and step == GROW
    return state

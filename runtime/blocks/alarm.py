"""ALARM: HH/H/L/LL limit alarms with deadband, on-delay, latching, acknowledge and bad quality."""

from __future__ import annotations

from typing import Final

from runtime.core._fb import CycleContext, FunctionBlock

__all__ = ["ALARM", "ALARM_KINDS"]

# Index of each alarm in the per-alarm state lists.
ALARM_KINDS = ("HH", "H", "L", "LL", "BAD")
_HH: Final = 0
_H: Final = 1
_L: Final = 2
_LL: Final = 3
_BAD: Final = 4


class ALARM(FunctionBlock):
    """Limit alarms on an analogue value, as an operator console shows them.

    Each limit is switched on by its own enable (HH_EN, H_EN, L_EN, LL_EN; all FALSE by
    default) rather than by a NaN limit, so snapshots stay strict JSON. High limits activate
    on IN > limit and clear on IN <= limit - DEADBAND; low limits activate on IN < limit and
    clear on IN >= limit + DEADBAND. Each limit is evaluated on its own, so above HH both
    HH_ACTIVE and H_ACTIVE are set. A condition must hold for DELAY seconds (on-delay) before
    its alarm activates; clearing is immediate.

    BAD (or a NaN IN) raises BAD_ACTIVE at once, without delay; while bad, the limit alarms
    keep their state (a failed sensor does not clear an alarm) and their on-delays restart.

    Every activation sets UNACKED until acknowledged by a rising edge of ACK or by
    ``acknowledge()`` between cycles. With LATCH an activated alarm stays active until its
    condition has cleared and it was acknowledged. SEVERITY: 0 none, 1 H/L, 2 HH/LL/BAD.
    """

    INPUTS = {
        "IN": 0.0,
        "HH": 0.0,
        "H": 0.0,
        "L": 0.0,
        "LL": 0.0,
        "HH_EN": False,
        "H_EN": False,
        "L_EN": False,
        "LL_EN": False,
        "DEADBAND": 0.0,
        "DELAY": 0.0,
        "LATCH": False,
        "ACK": False,
        "BAD": False,
        "TEXT": "",
    }
    OUTPUTS = {
        "HH_ACTIVE": False,
        "H_ACTIVE": False,
        "L_ACTIVE": False,
        "LL_ACTIVE": False,
        "BAD_ACTIVE": False,
        "ACTIVE": False,
        "UNACKED": False,
        "SEVERITY": 0,
    }
    # Per alarm (index as ALARM_KINDS): raw condition after deadband, time the condition
    # started (for the on-delay), condition after the delay, active output, unacknowledged.
    STATE = {
        "COND": [False] * 5,
        "SINCE_NS": [0] * 5,
        "ON": [False] * 5,
        "ACT": [False] * 5,
        "UNACK": [False] * 5,
        "ACK_M": False,
    }
    CLOCK_VARS = ("SINCE_NS",)  # app-time stamps: retained as ages (runtime.state)

    IN: float
    HH: float
    H: float
    L: float
    LL: float
    HH_EN: bool
    H_EN: bool
    L_EN: bool
    LL_EN: bool
    DEADBAND: float
    DELAY: float
    LATCH: bool
    ACK: bool
    BAD: bool
    TEXT: str
    HH_ACTIVE: bool
    H_ACTIVE: bool
    L_ACTIVE: bool
    LL_ACTIVE: bool
    BAD_ACTIVE: bool
    ACTIVE: bool
    UNACKED: bool
    SEVERITY: int
    COND: list[bool]
    SINCE_NS: list[int]
    ON: list[bool]
    ACT: list[bool]
    UNACK: list[bool]
    ACK_M: bool

    # Compiled, the per-alarm lists are C arrays (runtime/blocks/_cy/_gen.py): the methods
    # only index them (self.COND[k]), and annotated locals are C variables.

    def execute(self, ctx: CycleContext) -> None:
        ack: bool = self.ACK
        if ack and not self.ACK_M:
            self._ack()
        self.ACK_M = ack
        x: float = self.IN
        bad: bool = self.BAD or x != x
        self._set_bad(bad)
        if not bad:
            now_ns: int = ctx.now_ns
            db: float = self.DEADBAND
            self._limit(_HH, self.HH_EN, x > self.HH, x <= self.HH - db, now_ns)
            self._limit(_H, self.H_EN, x > self.H, x <= self.H - db, now_ns)
            self._limit(_L, self.L_EN, x < self.L, x >= self.L + db, now_ns)
            self._limit(_LL, self.LL_EN, x < self.LL, x >= self.LL + db, now_ns)
        self._outputs()

    def acknowledge(self) -> None:
        """Operator acknowledge between cycles: same effect as a rising edge of ACK."""
        self._ack()
        self._outputs()

    def _ack(self) -> None:
        k: int
        for k in range(5):
            self.UNACK[k] = False
            self.ACT[k] = self.ON[k]

    def _set_bad(self, bad: bool) -> None:
        self.COND[_BAD] = bad
        self.ON[_BAD] = bad
        self._activate(_BAD, bad)
        if bad:
            # A limit's on-delay must see a good signal for its whole duration.
            k: int
            for k in range(4):
                if self.COND[k] and not self.ON[k]:
                    self.COND[k] = False

    def _limit(self, k: int, enabled: bool, trip: bool, clear: bool, now_ns: int) -> None:
        cond: bool = self.COND[k]
        if not enabled:
            cond = False
        elif not cond:
            if trip:
                cond = True
                self.SINCE_NS[k] = now_ns
        elif clear:
            cond = False
        self.COND[k] = cond
        on: bool = cond and (now_ns - self.SINCE_NS[k]) / 1e9 >= self.DELAY
        self.ON[k] = on
        self._activate(k, on)

    def _activate(self, k: int, on: bool) -> None:
        if on:
            if not self.ACT[k]:
                self.ACT[k] = True
                self.UNACK[k] = True
        elif self.ACT[k] and not (self.LATCH and self.UNACK[k]):
            self.ACT[k] = False

    def _outputs(self) -> None:
        hh: bool = self.ACT[_HH]
        h: bool = self.ACT[_H]
        lo: bool = self.ACT[_L]
        ll: bool = self.ACT[_LL]
        b: bool = self.ACT[_BAD]
        self.HH_ACTIVE = hh
        self.H_ACTIVE = h
        self.L_ACTIVE = lo
        self.LL_ACTIVE = ll
        self.BAD_ACTIVE = b
        self.ACTIVE = hh or h or lo or ll or b
        self.UNACKED = (
            self.UNACK[_HH]
            or self.UNACK[_H]
            or self.UNACK[_L]
            or self.UNACK[_LL]
            or self.UNACK[_BAD]
        )
        if hh or ll or b:
            self.SEVERITY = 2
        elif h or lo:
            self.SEVERITY = 1
        else:
            self.SEVERITY = 0

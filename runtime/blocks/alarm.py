"""ALARM: HH/H/L/LL limit alarms with deadband, on-delay, latching, acknowledge and bad quality."""

from __future__ import annotations

from runtime._fb import CycleContext, FunctionBlock

__all__ = ["ALARM", "ALARM_KINDS"]

# Index of each alarm in the per-alarm state lists.
ALARM_KINDS = ("HH", "H", "L", "LL", "BAD")
_HH, _H, _L, _LL, _BAD = range(5)


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

    def execute(self, ctx: CycleContext) -> None:
        if self.ACK and not self.ACK_M:
            self._ack()
        self.ACK_M = self.ACK
        x = self.IN
        now_ns = ctx.now_ns
        bad = self.BAD or x != x
        self._set_bad(bad)
        if not bad:
            db = self.DEADBAND
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
        act = self.ACT
        unack = self.UNACK
        on = self.ON
        for k in range(5):
            unack[k] = False
            act[k] = on[k]

    def _set_bad(self, bad: bool) -> None:
        self.COND[_BAD] = bad
        self.ON[_BAD] = bad
        self._activate(_BAD, bad)
        if bad:
            # A limit's on-delay must see a good signal for its whole duration.
            cond = self.COND
            for k in range(4):
                if cond[k] and not self.ON[k]:
                    cond[k] = False

    def _limit(self, k: int, enabled: bool, trip: bool, clear: bool, now_ns: int) -> None:
        cond = self.COND
        if not enabled:
            cond[k] = False
        elif not cond[k]:
            if trip:
                cond[k] = True
                self.SINCE_NS[k] = now_ns
        elif clear:
            cond[k] = False
        on = cond[k] and (now_ns - self.SINCE_NS[k]) / 1e9 >= self.DELAY
        self.ON[k] = on
        self._activate(k, on)

    def _activate(self, k: int, on: bool) -> None:
        act = self.ACT
        if on:
            if not act[k]:
                act[k] = True
                self.UNACK[k] = True
        elif act[k] and not (self.LATCH and self.UNACK[k]):
            act[k] = False

    def _outputs(self) -> None:
        act = self.ACT
        self.HH_ACTIVE = act[_HH]
        self.H_ACTIVE = act[_H]
        self.L_ACTIVE = act[_L]
        self.LL_ACTIVE = act[_LL]
        self.BAD_ACTIVE = act[_BAD]
        self.ACTIVE = act[_HH] or act[_H] or act[_L] or act[_LL] or act[_BAD]
        u = self.UNACK
        self.UNACKED = u[0] or u[1] or u[2] or u[3] or u[4]
        if act[_HH] or act[_LL] or act[_BAD]:
            self.SEVERITY = 2
        elif act[_H] or act[_L]:
            self.SEVERITY = 1
        else:
            self.SEVERITY = 0

# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Cython ALARM: same ports, semantics and snapshots as runtime/blocks/alarm.py (see there).

The per-alarm state (COND, SINCE_NS, ON, ACT, UNACK) lives in C arrays; reading one of these
attributes gives a new list of 5 values and assigning a 5-item sequence sets it, so snapshots
and restore look exactly like the Python block's (but ``blk.COND[0] = True`` changes a copy).
"""

from runtime.blocks._cy._base cimport Block
from runtime.blocks._cy._base import declare

cdef object _UNSET = object()

ALARM_KINDS = ("HH", "H", "L", "LL", "BAD")

# Index of each alarm in the per-alarm state arrays (as ALARM_KINDS).
cdef enum:
    _HH = 0
    _H = 1
    _L = 2
    _LL = 3
    _BAD = 4


cdef class ALARM(Block):
    """HH/H/L/LL limit alarms with deadband, on-delay, latching, acknowledge and bad quality."""

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
    STATE = {
        "COND": [False] * 5,
        "SINCE_NS": [0] * 5,
        "ON": [False] * 5,
        "ACT": [False] * 5,
        "UNACK": [False] * 5,
        "ACK_M": False,
    }
    CLOCK_VARS = ("SINCE_NS",)  # app-time stamps: retained as ages (runtime.state)
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public double IN, HH, H, L, LL, DEADBAND, DELAY
    cdef public bint HH_EN, H_EN, L_EN, LL_EN, LATCH, ACK, BAD, ACK_M
    cdef public bint HH_ACTIVE, H_ACTIVE, L_ACTIVE, LL_ACTIVE, BAD_ACTIVE, ACTIVE, UNACKED
    cdef public long long SEVERITY
    cdef public str TEXT
    cdef bint _cond[5]
    cdef long long _since_ns[5]
    cdef bint _on[5]
    cdef bint _act[5]
    cdef bint _unack[5]

    def __cinit__(self):
        self.TEXT = ""

    @property
    def COND(self):
        return [self._cond[k] for k in range(5)]

    @COND.setter
    def COND(self, value):
        cdef bint tmp[5]
        if len(value) != 5:
            raise ValueError(f"ALARM.COND needs 5 values, one per ALARM_KINDS")
        for k in range(5):
            tmp[k] = value[k]
        for k in range(5):
            self._cond[k] = tmp[k]

    @property
    def SINCE_NS(self):
        return [self._since_ns[k] for k in range(5)]

    @SINCE_NS.setter
    def SINCE_NS(self, value):
        cdef long long tmp[5]
        if len(value) != 5:
            raise ValueError(f"ALARM.SINCE_NS needs 5 values, one per ALARM_KINDS")
        for k in range(5):
            tmp[k] = value[k]
        for k in range(5):
            self._since_ns[k] = tmp[k]

    @property
    def ON(self):
        return [self._on[k] for k in range(5)]

    @ON.setter
    def ON(self, value):
        cdef bint tmp[5]
        if len(value) != 5:
            raise ValueError(f"ALARM.ON needs 5 values, one per ALARM_KINDS")
        for k in range(5):
            tmp[k] = value[k]
        for k in range(5):
            self._on[k] = tmp[k]

    @property
    def ACT(self):
        return [self._act[k] for k in range(5)]

    @ACT.setter
    def ACT(self, value):
        cdef bint tmp[5]
        if len(value) != 5:
            raise ValueError(f"ALARM.ACT needs 5 values, one per ALARM_KINDS")
        for k in range(5):
            tmp[k] = value[k]
        for k in range(5):
            self._act[k] = tmp[k]

    @property
    def UNACK(self):
        return [self._unack[k] for k in range(5)]

    @UNACK.setter
    def UNACK(self, value):
        cdef bint tmp[5]
        if len(value) != 5:
            raise ValueError(f"ALARM.UNACK needs 5 values, one per ALARM_KINDS")
        for k in range(5):
            tmp[k] = value[k]
        for k in range(5):
            self._unack[k] = tmp[k]

    def __call__(self, ctx, *, IN=_UNSET, HH=_UNSET, H=_UNSET, L=_UNSET, LL=_UNSET, HH_EN=_UNSET,
                 H_EN=_UNSET, L_EN=_UNSET, LL_EN=_UNSET, DEADBAND=_UNSET, DELAY=_UNSET,
                 LATCH=_UNSET, ACK=_UNSET, BAD=_UNSET, TEXT=_UNSET):
        if IN is not _UNSET:
            self.IN = IN
        if HH is not _UNSET:
            self.HH = HH
        if H is not _UNSET:
            self.H = H
        if L is not _UNSET:
            self.L = L
        if LL is not _UNSET:
            self.LL = LL
        if HH_EN is not _UNSET:
            self.HH_EN = HH_EN
        if H_EN is not _UNSET:
            self.H_EN = H_EN
        if L_EN is not _UNSET:
            self.L_EN = L_EN
        if LL_EN is not _UNSET:
            self.LL_EN = LL_EN
        if DEADBAND is not _UNSET:
            self.DEADBAND = DEADBAND
        if DELAY is not _UNSET:
            self.DELAY = DELAY
        if LATCH is not _UNSET:
            self.LATCH = LATCH
        if ACK is not _UNSET:
            self.ACK = ACK
        if BAD is not _UNSET:
            self.BAD = BAD
        if TEXT is not _UNSET:
            self.TEXT = TEXT
        self.execute(ctx)

    def call(self, ctx, *, IN=_UNSET, HH=_UNSET, H=_UNSET, L=_UNSET, LL=_UNSET, HH_EN=_UNSET,
             H_EN=_UNSET, L_EN=_UNSET, LL_EN=_UNSET, DEADBAND=_UNSET, DELAY=_UNSET, LATCH=_UNSET,
             ACK=_UNSET, BAD=_UNSET, TEXT=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if IN is not _UNSET:
            self.IN = IN
        if HH is not _UNSET:
            self.HH = HH
        if H is not _UNSET:
            self.H = H
        if L is not _UNSET:
            self.L = L
        if LL is not _UNSET:
            self.LL = LL
        if HH_EN is not _UNSET:
            self.HH_EN = HH_EN
        if H_EN is not _UNSET:
            self.H_EN = H_EN
        if L_EN is not _UNSET:
            self.L_EN = L_EN
        if LL_EN is not _UNSET:
            self.LL_EN = LL_EN
        if DEADBAND is not _UNSET:
            self.DEADBAND = DEADBAND
        if DELAY is not _UNSET:
            self.DELAY = DELAY
        if LATCH is not _UNSET:
            self.LATCH = LATCH
        if ACK is not _UNSET:
            self.ACK = ACK
        if BAD is not _UNSET:
            self.BAD = BAD
        if TEXT is not _UNSET:
            self.TEXT = TEXT
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef double x, db
        cdef long long now_ns
        cdef bint bad
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

    def acknowledge(self):
        """Operator acknowledge between cycles: same effect as a rising edge of ACK."""
        self._ack()
        self._outputs()

    cdef void _ack(self):
        cdef int k
        for k in range(5):
            self._unack[k] = False
            self._act[k] = self._on[k]

    cdef void _set_bad(self, bint bad):
        cdef int k
        self._cond[_BAD] = bad
        self._on[_BAD] = bad
        self._activate(_BAD, bad)
        if bad:
            # A limit's on-delay must see a good signal for its whole duration.
            for k in range(4):
                if self._cond[k] and not self._on[k]:
                    self._cond[k] = False

    cdef void _limit(self, int k, bint enabled, bint trip, bint clear, long long now_ns):
        cdef bint on
        if not enabled:
            self._cond[k] = False
        elif not self._cond[k]:
            if trip:
                self._cond[k] = True
                self._since_ns[k] = now_ns
        elif clear:
            self._cond[k] = False
        on = self._cond[k] and <double>(now_ns - self._since_ns[k]) / 1e9 >= self.DELAY
        self._on[k] = on
        self._activate(k, on)

    cdef void _activate(self, int k, bint on):
        if on:
            if not self._act[k]:
                self._act[k] = True
                self._unack[k] = True
        elif self._act[k] and not (self.LATCH and self._unack[k]):
            self._act[k] = False

    cdef void _outputs(self):
        cdef bint* act = self._act
        cdef bint* u = self._unack
        self.HH_ACTIVE = act[_HH]
        self.H_ACTIVE = act[_H]
        self.L_ACTIVE = act[_L]
        self.LL_ACTIVE = act[_LL]
        self.BAD_ACTIVE = act[_BAD]
        self.ACTIVE = act[_HH] or act[_H] or act[_L] or act[_LL] or act[_BAD]
        self.UNACKED = u[0] or u[1] or u[2] or u[3] or u[4]
        if act[_HH] or act[_LL] or act[_BAD]:
            self.SEVERITY = 2
        elif act[_H] or act[_L]:
            self.SEVERITY = 1
        else:
            self.SEVERITY = 0

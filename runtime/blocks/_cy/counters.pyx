# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Cython CTU, CTD and CTUD: same ports, semantics and snapshots as runtime/blocks/counters.py.

CV and PV are C ``long long``: a PV outside that range raises OverflowError where the Python
version would accept it (CV itself is clamped to the IEC INT range in both).
"""

from runtime.blocks._cy._base cimport Block
from runtime.blocks._cy._base import declare

cdef object _UNSET = object()

cdef long long _CV_MAX = 32767
cdef long long _CV_MIN = -32768


cdef inline long long _clamp_pv(long long pv):
    # max(PV_MIN, min(PV_MAX, pv)) exactly as the Python version evaluates it.
    cdef long long x = pv if pv < _CV_MAX else _CV_MAX
    return x if x > _CV_MIN else _CV_MIN


cdef class CTU(Block):
    """Up-counter: R resets CV to 0; a CU edge increments CV up to PV_MAX; Q = CV >= PV."""

    PV_MAX = 32767
    PV_MIN = -32768
    INPUTS = {"CU": False, "R": False, "PV": 0}
    OUTPUTS = {"Q": False, "CV": 0}
    STATE = {"CU_M": False}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint CU, R, Q, CU_M
    cdef public long long PV, CV

    def __call__(self, ctx, *, CU=_UNSET, R=_UNSET, PV=_UNSET):
        if CU is not _UNSET:
            self.CU = CU
        if R is not _UNSET:
            self.R = R
        if PV is not _UNSET:
            self.PV = PV
        self.execute(ctx)

    def call(self, ctx, *, CU=_UNSET, R=_UNSET, PV=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if CU is not _UNSET:
            self.CU = CU
        if R is not _UNSET:
            self.R = R
        if PV is not _UNSET:
            self.PV = PV
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef bint cu = self.CU and not self.CU_M
        self.CU_M = self.CU
        if self.R:
            self.CV = 0
        elif cu and self.CV < _CV_MAX:
            self.CV += 1
        self.Q = self.CV >= self.PV


cdef class CTD(Block):
    """Down-counter: LD loads CV with PV; a CD edge decrements CV down to PV_MIN; Q = CV <= 0."""

    PV_MAX = 32767
    PV_MIN = -32768
    INPUTS = {"CD": False, "LD": False, "PV": 0}
    OUTPUTS = {"Q": False, "CV": 0}
    STATE = {"CD_M": False}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint CD, LD, Q, CD_M
    cdef public long long PV, CV

    def __call__(self, ctx, *, CD=_UNSET, LD=_UNSET, PV=_UNSET):
        if CD is not _UNSET:
            self.CD = CD
        if LD is not _UNSET:
            self.LD = LD
        if PV is not _UNSET:
            self.PV = PV
        self.execute(ctx)

    def call(self, ctx, *, CD=_UNSET, LD=_UNSET, PV=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if CD is not _UNSET:
            self.CD = CD
        if LD is not _UNSET:
            self.LD = LD
        if PV is not _UNSET:
            self.PV = PV
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef bint cd = self.CD and not self.CD_M
        self.CD_M = self.CD
        if self.LD:
            self.CV = _clamp_pv(self.PV)
        elif cd and self.CV > _CV_MIN:
            self.CV -= 1
        self.Q = self.CV <= 0


cdef class CTUD(Block):
    """Up-down counter: R (priority) clears, LD loads PV, CU/CD edges count; both edges: none.

    QU = CV >= PV, QD = CV <= 0.
    """

    PV_MAX = 32767
    PV_MIN = -32768
    INPUTS = {"CU": False, "CD": False, "R": False, "LD": False, "PV": 0}
    OUTPUTS = {"QU": False, "QD": False, "CV": 0}
    STATE = {"CU_M": False, "CD_M": False}
    _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)

    cdef public bint CU, CD, R, LD, QU, QD, CU_M, CD_M
    cdef public long long PV, CV

    def __call__(self, ctx, *, CU=_UNSET, CD=_UNSET, R=_UNSET, LD=_UNSET, PV=_UNSET):
        if CU is not _UNSET:
            self.CU = CU
        if CD is not _UNSET:
            self.CD = CD
        if R is not _UNSET:
            self.R = R
        if LD is not _UNSET:
            self.LD = LD
        if PV is not _UNSET:
            self.PV = PV
        self.execute(ctx)

    def call(self, ctx, *, CU=_UNSET, CD=_UNSET, R=_UNSET, LD=_UNSET, PV=_UNSET):
        """Same as calling the block, without building a keyword dict (the fast path)."""
        if CU is not _UNSET:
            self.CU = CU
        if CD is not _UNSET:
            self.CD = CD
        if R is not _UNSET:
            self.R = R
        if LD is not _UNSET:
            self.LD = LD
        if PV is not _UNSET:
            self.PV = PV
        self.execute(ctx)

    cpdef execute(self, ctx):
        cdef bint cu = self.CU and not self.CU_M
        cdef bint cd = self.CD and not self.CD_M
        self.CU_M = self.CU
        self.CD_M = self.CD
        if self.R:
            self.CV = 0
        elif self.LD:
            self.CV = _clamp_pv(self.PV)
        elif cu and cd:
            pass
        elif cu:
            if self.CV < _CV_MAX:
                self.CV += 1
        elif cd and self.CV > _CV_MIN:
            self.CV -= 1
        self.QU = self.CV >= self.PV
        self.QD = self.CV <= 0

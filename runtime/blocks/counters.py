"""IEC 61131-3 (3rd edition) counters CTU, CTD and CTUD with edge-triggered count inputs."""

from __future__ import annotations

from typing import Final

from runtime.core._fb import CycleContext, FunctionBlock

__all__ = ["CTD", "CTU", "CTUD"]

# CU and CD are R_EDGE inputs in the standard: a count happens on the call that sees them go
# from FALSE to TRUE. The edge memory starts FALSE, so CU TRUE on the first call counts once.
# The edge memory is updated on every call, also while R or LD is active: an edge that happens
# during a reset is consumed by it and not counted later.

# CV is an IEC INT (module constants: C constants in the compiled build).
_CV_MAX: Final = 32767
_CV_MIN: Final = -32768


class _Counter(FunctionBlock):
    """Shared INT limits of the counters (CV is an IEC INT: -32768..32767)."""

    __slots__ = ()
    PV_MAX = _CV_MAX
    PV_MIN = _CV_MIN


class CTU(_Counter):
    """Up-counter: R resets CV to 0; a CU edge increments CV up to PV_MAX; Q = CV >= PV."""

    INPUTS = {"CU": False, "R": False, "PV": 0}
    OUTPUTS = {"Q": False, "CV": 0}
    STATE = {"CU_M": False}

    CU: bool
    R: bool
    PV: int
    Q: bool
    CV: int
    CU_M: bool

    def execute(self, ctx: CycleContext) -> None:
        cu = self.CU and not self.CU_M
        self.CU_M = self.CU
        if self.R:
            self.CV = 0
        elif cu and self.CV < _CV_MAX:
            self.CV += 1
        self.Q = self.CV >= self.PV


class CTD(_Counter):
    """Down-counter: LD loads CV with PV; a CD edge decrements CV down to PV_MIN; Q = CV <= 0."""

    INPUTS = {"CD": False, "LD": False, "PV": 0}
    OUTPUTS = {"Q": False, "CV": 0}
    STATE = {"CD_M": False}

    CD: bool
    LD: bool
    PV: int
    Q: bool
    CV: int
    CD_M: bool

    def execute(self, ctx: CycleContext) -> None:
        cd = self.CD and not self.CD_M
        self.CD_M = self.CD
        if self.LD:
            self.CV = max(_CV_MIN, min(_CV_MAX, self.PV))
        elif cd and self.CV > _CV_MIN:
            self.CV -= 1
        self.Q = self.CV <= 0


class CTUD(_Counter):
    """Up-down counter: R (priority) clears, LD loads PV, CU/CD edges count; both edges: no change.

    QU = CV >= PV, QD = CV <= 0.
    """

    INPUTS = {"CU": False, "CD": False, "R": False, "LD": False, "PV": 0}
    OUTPUTS = {"QU": False, "QD": False, "CV": 0}
    STATE = {"CU_M": False, "CD_M": False}

    CU: bool
    CD: bool
    R: bool
    LD: bool
    PV: int
    QU: bool
    QD: bool
    CV: int
    CU_M: bool
    CD_M: bool

    def execute(self, ctx: CycleContext) -> None:
        cu = self.CU and not self.CU_M
        cd = self.CD and not self.CD_M
        self.CU_M = self.CU
        self.CD_M = self.CD
        if self.R:
            self.CV = 0
        elif self.LD:
            self.CV = max(_CV_MIN, min(_CV_MAX, self.PV))
        elif cu and cd:
            pass
        elif cu:
            if self.CV < _CV_MAX:
                self.CV += 1
        elif cd and self.CV > _CV_MIN:
            self.CV -= 1
        self.QU = self.CV >= self.PV
        self.QD = self.CV <= 0

"""IEC 61131-3 edge detectors R_TRIG and F_TRIG."""

from __future__ import annotations

from runtime.core._fb import CycleContext, FunctionBlock

__all__ = ["F_TRIG", "R_TRIG"]


class R_TRIG(FunctionBlock):  # noqa: N801 - IEC name
    """Rising edge: Q is TRUE for the one call on which CLK went from FALSE to TRUE.

    The memory M starts FALSE, so CLK TRUE on the first call gives Q TRUE (every PLC agrees).
    """

    INPUTS = {"CLK": False}
    OUTPUTS = {"Q": False}
    STATE = {"M": False}

    CLK: bool
    Q: bool
    M: bool

    def execute(self, ctx: CycleContext) -> None:
        self.Q = self.CLK and not self.M
        self.M = self.CLK


class F_TRIG(FunctionBlock):  # noqa: N801 - IEC name
    """Falling edge: Q is TRUE for the one call on which CLK went from TRUE to FALSE.

    First call, deliberately as IEC 61131-3 edition 2 and 3 define it: the memory holds
    ``NOT CLK`` of the previous call and starts FALSE, i.e. as if CLK had been TRUE, so CLK
    FALSE on the very first call gives Q TRUE once. (CODESYS's and TwinCAT's standard library
    keep the edition-1 behaviour, Q FALSE; CODESYS's own safety F_TRIG follows edition 2.)
    M is part of the snapshot, so a warm restart or restored snapshot gives no such pulse.
    """

    INPUTS = {"CLK": False}
    OUTPUTS = {"Q": False}
    STATE = {"M": False}

    CLK: bool
    Q: bool
    M: bool

    def execute(self, ctx: CycleContext) -> None:
        self.Q = not self.CLK and not self.M
        self.M = not self.CLK

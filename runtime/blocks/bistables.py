"""IEC 61131-3 bistables SR (set dominant) and RS (reset dominant)."""

from __future__ import annotations

from runtime.core._fb import CycleContext, FunctionBlock

__all__ = ["RS", "SR"]


class SR(FunctionBlock):
    """Set-dominant latch: Q1 := S1 OR (NOT R AND Q1)."""

    INPUTS = {"S1": False, "R": False}
    OUTPUTS = {"Q1": False}

    S1: bool
    R: bool
    Q1: bool

    def execute(self, ctx: CycleContext) -> None:
        self.Q1 = self.S1 or (not self.R and self.Q1)


class RS(FunctionBlock):
    """Reset-dominant latch: Q1 := NOT R1 AND (S OR Q1)."""

    INPUTS = {"S": False, "R1": False}
    OUTPUTS = {"Q1": False}

    S: bool
    R1: bool
    Q1: bool

    def execute(self, ctx: CycleContext) -> None:
        self.Q1 = not self.R1 and (self.S or self.Q1)

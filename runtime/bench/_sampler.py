"""Per-assertion state machines, sampled once per cycle of the fastest task."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.bench._prepare import Compiled

__all__ = ["AssertionResult", "Sampler"]

_EPS = 1e-9


@dataclass
class AssertionResult:
    """The verdict of one assertion; ``t``/``values`` are where it failed (or held)."""

    label: str
    kind: str
    passed: bool
    message: str = ""
    t: float | None = None
    values: dict[str, Any] = field(default_factory=dict)
    window: tuple[float, float | None] | None = None
    signals: list[str] = field(default_factory=list)
    error: str = ""  # the condition could not be evaluated: a scenario error, not a failure


class Sampler:
    """Per-assertion state machine fed once per cycle of the fastest task."""

    def __init__(self, c: Compiled, duration: float) -> None:
        self.c = c
        spec = c.spec
        self.kind = spec.kind
        self.start = spec.at if spec.at is not None else spec.from_
        end = spec.window_end
        self.stop = duration if end is None else end
        self.samples = self.failed = 0
        self.t: float | None = None  # first failure (always/never/at) or success (eventually)
        self.values: dict[str, Any] = {}
        self.done = self.kind == "at_end"
        self._lo, self._hi = self.start - _EPS, self.stop + _EPS  # the window, sampled inclusive
        self._steady = self.kind in ("always", "never")  # judged at every sample
        self._negate = self.kind == "never"  # a never-condition holds while its test is False
        self.errors = 0  # samples whose evaluation raised
        self.error = ""  # the first such exception, and when

    def sample(self, t: float) -> None:
        # Once per cycle of a 14-day run: an always/never sample is the condition and two
        # counters; the rarer kinds take the branch after it.
        if self.done or t < self._lo or t > self._hi:
            return
        ok = self._eval(t)
        self.samples += 1
        if self._steady:
            if not ok:
                self._fail(t)
        elif self.kind == "eventually":
            if ok:
                self._note(t)
                self.done = True
        else:  # "at": one sample, noted pass or fail (the plot marks where it was taken)
            self.done = True
            self._note(t)
            if not ok:
                self.failed += 1

    def _fail(self, t: float) -> None:
        self.failed += 1
        if self.t is None:
            self._note(t)

    def _eval(self, t: float) -> bool:
        try:
            ok = self.c.test()
        except Exception as exc:  # e.g. a division by a signal that is 0: not a verdict
            self.errors += 1
            if not self.error:
                self.error = f"{type(exc).__name__}: {exc} (first at t={t:.3f} s)"
            return False  # the condition cannot be shown to hold, never or always
        return not ok if self._negate else ok

    def _note(self, t: float) -> None:
        self.t = t
        self.values = {n: g() for n, g in self.c.signals.items()}

    def finish(self, t_end: float) -> AssertionResult:
        spec, c = self.c.spec, self.c
        if self.kind == "at_end":
            self.samples = 1
            self.failed = 0 if self._eval(t_end) else 1
            self._note(t_end)
        if self.kind == "eventually":
            passed = self.t is not None
        else:
            passed = self.samples > 0 and self.failed == 0
        res = AssertionResult(spec.label(), self.kind, passed, t=self.t, values=self.values)
        res.signals = list(c.signals)
        if self.kind in ("always", "never", "eventually"):
            res.window = (self.start, self.stop)
        if self.error:
            res.passed = False
            res.error = res.message = (
                f"{c.where or 'scenario'}: expression error in {c.text!r}: {self.error}; "
                f"{self.errors} of {self.samples} samples could not be evaluated"
            )
        elif not passed:
            res.message = self._message(t_end)
        return res

    def _message(self, t_end: float) -> str:
        label = self.c.spec.label()
        vals = ", ".join(f"{n} = {_fmt(v)}" for n, v in self.values.items())
        if self.samples == 0:
            return f"{label}: never sampled (no cycle in t=[{self.start:g}, {self.stop:g}] s)"
        if self.kind == "eventually":
            last = ", ".join(f"{n} = {_fmt(g())}" for n, g in self.c.signals.items())
            return (
                f"{label}: not true at any time in t=[{self.start:g}, {min(self.stop, t_end):g}]"
                f" s (values at the end of the window or run: {last})"
            )
        bound = f"bound: never {self.c.text}" if self.kind == "never" else f"bound: {self.c.text}"
        extra = f"; {self.failed} of {self.samples} samples failed" if self.samples > 1 else ""
        return f"{label}: failed at t={self.t:.3f} s: {vals} ({bound}){extra}"


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else repr(v)

"""Function-block and program base classes: declared variables, the cycle context, snapshots."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar


class CycleContext:
    """What a block may know about time: handed in each cycle, never read from a wall clock.

    ``now`` is seconds since the runtime started (real, virtual or replayed time alike),
    ``dt`` the seconds since this task's previous cycle (0.0 on the first scan).
    One instance per task is reused every cycle, so blocks must not keep a reference to it.
    """

    __slots__ = ("cycle", "dt", "first_scan", "now", "now_ns", "task")

    def __init__(self, task: str = "") -> None:
        self.task = task
        self.now_ns = 0
        self.now = 0.0
        self.dt = 0.0
        self.cycle = 0
        self.first_scan = True

    def advance(self, now_ns: int) -> None:
        """Move the context to a new release time (called by the scan engine only)."""
        cycle = self.cycle  # runs every task cycle: one attribute read, not three
        self.dt = (now_ns - self.now_ns) / 1e9 if cycle else 0.0
        self.first_scan = not cycle
        self.now_ns = now_ns
        self.now = now_ns / 1e9
        self.cycle = cycle + 1


class _FBMeta(type):
    """Turns the INPUTS/OUTPUTS/STATE declarations of a block class into ``__slots__``.

    Slots make a typo'd input an AttributeError instead of a silent new attribute, and keep
    thousands of block instances small and fast to access.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> _FBMeta:
        inherited: set[str] = set()
        for base in bases:
            for klass in base.__mro__:
                inherited.update(getattr(klass, "__slots__", ()))
        declared: list[str] = []
        for group in ("INPUTS", "OUTPUTS", "STATE"):
            declared.extend(ns.get(group, {}))
        if "__slots__" not in ns:
            ns["__slots__"] = tuple(n for n in dict.fromkeys(declared) if n not in inherited)
        cls = super().__new__(mcs, name, bases, ns)
        all_vars: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for group in ("INPUTS", "OUTPUTS", "STATE"):
                all_vars.update(klass.__dict__.get(group, {}))
        inputs = {n for k in cls.__mro__ for n in k.__dict__.get("INPUTS", {})}
        cls._VARS = all_vars  # type: ignore[attr-defined]
        cls._INPUT_NAMES = frozenset(inputs)  # type: ignore[attr-defined]
        return cls

    # Classes that cannot inherit FunctionBlock (Cython cdef classes) but behave as one.
    _virtual: tuple[type, ...] = ()

    def register(cls, subclass: type) -> type:
        """Make ``subclass`` and its subclasses count as FunctionBlocks (isinstance/issubclass)."""
        _FBMeta._virtual = (*_FBMeta._virtual, subclass)
        return subclass

    def __instancecheck__(cls, instance: object) -> bool:
        return type.__instancecheck__(cls, instance) or (
            cls is FunctionBlock and isinstance(instance, _FBMeta._virtual)
        )

    def __subclasscheck__(cls, subclass: type) -> bool:
        return type.__subclasscheck__(cls, subclass) or (
            cls is FunctionBlock and issubclass(subclass, _FBMeta._virtual)
        )


class FunctionBlock(metaclass=_FBMeta):
    """Base of every IEC 61131-3 style function block.

    A block declares ``INPUTS``, ``OUTPUTS`` and ``STATE`` as name → initial value; a value
    that is a FunctionBlock subclass declares a nested instance. ``__call__(ctx, **inputs)``
    assigns the given inputs (unset ones keep their last value, as in IEC) and runs
    ``execute(ctx)``. All state is plain data: ``snapshot()`` → dict, ``restore(dict)``.
    """

    __slots__ = ()
    INPUTS: ClassVar[Mapping[str, Any]] = {}
    OUTPUTS: ClassVar[Mapping[str, Any]] = {}
    STATE: ClassVar[Mapping[str, Any]] = {}
    # Variables holding app-time stamps in ns (``ctx.now_ns`` of an event): app time restarts
    # at 0 in every runtime, so the state layer keeps these as ages across runtimes.
    CLOCK_VARS: ClassVar[tuple[str, ...]] = ()
    _VARS: ClassVar[dict[str, Any]]
    _INPUT_NAMES: ClassVar[frozenset[str]]

    def __init__(self, **inputs: Any) -> None:
        for var, initial in self._VARS.items():
            if isinstance(initial, type) and issubclass(initial, FunctionBlock):
                setattr(self, var, initial())
            else:
                setattr(self, var, copy.copy(initial))
        for var, value in inputs.items():
            if var not in self._INPUT_NAMES:
                raise TypeError(f"{type(self).__name__} has no input {var!r}")
            setattr(self, var, value)

    def __call__(self, ctx: CycleContext, **inputs: Any) -> None:
        for var, value in inputs.items():
            setattr(self, var, value)
        self.execute(ctx)

    # Same as calling the block; the Cython blocks make this the fast path (no kwargs dict).
    call = __call__

    def execute(self, ctx: CycleContext) -> None:
        raise NotImplementedError(f"{type(self).__name__}.execute")

    def snapshot(self) -> dict[str, Any]:
        """All declared variables (inputs, outputs, state) as JSON-able values."""
        out: dict[str, Any] = {}
        for var in self._VARS:
            value = getattr(self, var)
            out[var] = value.snapshot() if isinstance(value, FunctionBlock) else copy.copy(value)
        return out

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load a snapshot; unknown variables are an error, missing ones keep their value."""
        unknown = set(state) - set(self._VARS)
        if unknown:
            raise KeyError(f"{type(self).__name__} has no variable(s) {sorted(unknown)}")
        for var, value in state.items():
            current = getattr(self, var)
            if isinstance(current, FunctionBlock):
                current.restore(value)
            else:
                setattr(self, var, copy.copy(value))

    def __repr__(self) -> str:
        outs = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.OUTPUTS)
        return f"<{type(self).__name__} {outs}>"

"""Function-block and program base classes: declared variables, the cycle context, snapshots."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from hal import IecType, Point

# What a block input may be wired to: hal Points here, the runtime's parameters and global
# variables once runtime.core._program has registered them (``wireable``).
_SOURCES: tuple[type, ...] = (Point,)
# The IEC types a source may have to feed an input, by the type of the input's initial value
# (REAL into an INT input, or INT into a REAL one, needs a conversion the app writes).
_FEEDS: tuple[tuple[type, frozenset[IecType]], ...] = (
    (bool, frozenset({IecType.BOOL})),
    (int, frozenset({IecType.INT, IecType.DINT})),
    (float, frozenset({IecType.REAL, IecType.LREAL})),
    (str, frozenset({IecType.STRING})),
)
Wires = tuple[tuple[str, Any], ...]


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


def wireable(*types: type) -> None:
    """Let block inputs be wired to instances of ``types`` (each has ``.value`` and
    ``.spec.type``, an IecType)."""
    global _SOURCES
    _SOURCES = (*_SOURCES, *(t for t in types if t not in _SOURCES))


def split_inputs(block: Any, inputs: Mapping[str, Any]) -> tuple[dict[str, Any], Wires | None]:
    """The constructor's inputs: values to assign, and ``(input, source)`` wires (None if none).

    An input given a point, parameter or global variable is *wired*: the block reads the
    source's ``.value`` at the start of every call, before that call's keywords. Shared by the
    Python and the compiled base, so both builds accept and refuse the same wires.
    """
    cls = type(block)
    values: dict[str, Any] = {}
    wires: list[tuple[str, Any]] = []
    for var, value in inputs.items():
        if var not in cls._INPUT_NAMES:
            raise TypeError(f"{cls.__name__} has no input {var!r}")
        if isinstance(value, _SOURCES):
            _check_wire(cls, var, value)
            wires.append((var, value))
        else:
            values[var] = value
    return values, (tuple(wires) if wires else None)


def _check_wire(cls: Any, var: str, source: Any) -> None:
    name = f"{cls.__name__}.{var}"
    if not getattr(cls, "READS_WIRES", False):
        raise TypeError(
            f"{name}: this block does not read wired inputs (its __call__ is its own); "
            f"pass {var}={source.name}.value in each call instead"
        )
    initial, kind = cls._VARS[var], source.spec.type
    for py_type, feeds in _FEEDS:
        if isinstance(initial, py_type):
            if kind not in feeds:
                allowed = " or ".join(sorted(t.value for t in feeds))
                raise TypeError(
                    f"{name} is {py_type.__name__}: it can be wired to a {allowed} source, "
                    f"not to {source.name!r} ({kind.value}); convert it in the program"
                )
            return
    raise TypeError(f"{name} ({type(initial).__name__}) cannot be wired to a point")


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
        if ("__call__" in ns or "call" in ns) and "READS_WIRES" not in ns:
            ns["READS_WIRES"] = False  # its own call may not read them: refuse wires, loudly
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

    An input given a point, parameter or global variable at construction is wired to it
    (``PID(PV=self.tt)``): every call reads the source's ``.value`` into the input first, then
    assigns the call's keywords (so a keyword wins for that call). Only the value is read;
    quality is the program's to check. Wires are no state: snapshots hold the input's last
    value, a copy is unwired, and a program's ``__init__`` wires its blocks again wherever it
    is rebuilt.
    """

    __slots__ = ("_wires",)
    READS_WIRES: ClassVar[bool] = True  # a subclass with its own __call__ sets it False
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
        values, self._wires = split_inputs(self, inputs)
        for var, value in values.items():
            setattr(self, var, value)

    def __call__(self, ctx: CycleContext, **inputs: Any) -> None:
        wires = self._wires
        if wires is not None:
            for var, source in wires:
                setattr(self, var, source.value)
        for var, value in inputs.items():
            setattr(self, var, value)
        self.execute(ctx)

    # Same as calling the block; the Cython blocks make this the fast path (no kwargs dict).
    call = __call__

    def execute(self, ctx: CycleContext) -> None:
        raise NotImplementedError(f"{type(self).__name__}.execute")

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        # copy, deepcopy and pickle give an unwired block (as the compiled build, which copies
        # through the snapshot): a deep copy must not copy the live points it reads.
        state = super().__getstate__()  # a slotted object's: (None, {slot: value})
        assert isinstance(state, tuple)
        return None, {**state[1], "_wires": None}

    def read_wired(self) -> None:
        """Read the wired inputs now, as the next call will (e.g. to compute from PV first)."""
        for var, source in self._wires or ():
            setattr(self, var, source.value)

    def wired(self) -> dict[str, str]:
        """Input → name of the point, parameter or global variable it is wired to."""
        return {var: source.name for var, source in self._wires or ()}

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

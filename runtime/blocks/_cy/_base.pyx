# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Base of the Cython function blocks: construction, snapshot/restore and repr, as FunctionBlock.

A cdef class cannot inherit the Python FunctionBlock, so ``Block`` re-implements its generic
parts and is registered as a virtual subclass (``FunctionBlock.register(Block)``): every
Cython block, also an app's own, passes ``isinstance(blk, FunctionBlock)``.

The standard blocks' compiled classes are generated from their Python modules
(runtime/blocks/_cy/_gen.py). An app's own .pyx block declares its ports twice: once as C
attributes (``cdef public double PT``) and once as the INPUTS/OUTPUTS/STATE dicts the runtime
reads, plus ``_VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)`` in the
class body; initial values are set in ``__cinit__`` (see runtime/core/_pyx.py).

Wired inputs (``PID(PV=point)``, see FunctionBlock) are accepted and checked by the same
``split_inputs`` as the Python base. A generated class reads them at the start of its
``__call__``/``call`` with ``if self._wires is not None: self._pull()`` (one pointer compare
when nothing is wired) and says so with ``READS_WIRES = True``; a hand-written .pyx block
without that refuses wires (TypeError) instead of ignoring them.
"""

import copy

from runtime.core._fb import FunctionBlock, split_inputs

_SCALARS = (float, int, bool, str)

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str"}


def declare(inputs, outputs, state):
    """``(_VARS, _INPUT_NAMES, __annotations__)`` of a block class from its declarations."""
    all_vars = {**inputs, **outputs, **state}
    notes = {}
    for name, initial in all_vars.items():
        if isinstance(initial, list):
            inner = _TYPE_NAMES.get(type(initial[0]), "object") if initial else "object"
            notes[name] = f"list[{inner}]"
        elif isinstance(initial, type):
            notes[name] = initial.__name__
        else:
            notes[name] = _TYPE_NAMES.get(type(initial), "object")
    return all_vars, frozenset(inputs), notes


def initial(value):
    """A new instance's value of a variable declared with ``value`` (as FunctionBlock does)."""
    if isinstance(value, type) and issubclass(value, FunctionBlock):
        return value()
    return copy.copy(value)


cdef class Block:
    """Generic parts of a Cython function block (see the module docstring)."""

    INPUTS = {}
    OUTPUTS = {}
    STATE = {}
    CLOCK_VARS = ()
    _VARS = {}
    _INPUT_NAMES = frozenset()

    READS_WIRES = False  # a generated class sets it: its calls read the wires

    def __init__(self, **inputs):
        values, self._wires = split_inputs(self, inputs)
        for var, value in values.items():
            setattr(self, var, value)

    cdef int _pull(self) except -1:
        for var, source in self._wires:
            setattr(self, var, source.value)
        return 0

    def read_wired(self):
        """Read the wired inputs now, as the next call will (e.g. to compute from PV first)."""
        if self._wires is not None:
            self._pull()

    def wired(self):
        """Input → name of the point, parameter or global variable it is wired to."""
        return {var: source.name for var, source in self._wires or ()}

    cpdef execute(self, ctx):
        raise NotImplementedError(f"{type(self).__name__}.execute")

    def snapshot(self):
        """All declared variables (inputs, outputs, state) as JSON-able values."""
        cdef dict out = {}
        for var in self._VARS:
            value = getattr(self, var)
            if type(value) in _SCALARS:
                out[var] = value
            elif isinstance(value, FunctionBlock):
                out[var] = value.snapshot()
            else:
                out[var] = copy.copy(value)
        return out

    def restore(self, state):
        """Load a snapshot; unknown variables are an error, missing ones keep their value."""
        declared = self._VARS
        unknown = [var for var in state if var not in declared]
        if unknown:
            raise KeyError(f"{type(self).__name__} has no variable(s) {sorted(unknown)}")
        for var, value in state.items():
            current = getattr(self, var)
            if isinstance(current, FunctionBlock):
                current.restore(value)
            else:
                setattr(self, var, copy.copy(value))

    def __reduce__(self):
        # copy/deepcopy/pickle through the snapshot, as for the plain-data Python blocks.
        return (_rebuild, (type(self), self.snapshot()))

    def __repr__(self):
        outs = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.OUTPUTS)
        return f"<{type(self).__name__} {outs}>"


def _rebuild(cls, state):
    blk = cls()
    blk.restore(state)
    return blk


FunctionBlock.register(Block)

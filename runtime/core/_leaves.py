"""An app's state as leaves by instance path (programs and globals), clock stamps, initials."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from runtime.core._fb import FunctionBlock
from runtime.core._program import GlobalVar, Program

_IMMUTABLE = (int, float, bool, str, bytes, type(None))


def program_leaves(name: str, program: Program) -> Iterator[tuple[str, object, str]]:
    """Every state variable of a program as (instance path, owner, attribute).

    Paths look like ``control.batch_counter``, ``control.temp_pid.I`` or ``control.alarms[3].Q``:
    program VARS are leaves as a whole; function blocks (alone, in lists or dicts, nested)
    are walked down to their declared variables, so a block that gains a variable in a new
    version still receives all the others.
    """
    for var in program.VARS:
        yield f"{name}.{var}", program, var
    for attr, value in vars(program).items():
        if attr not in program.VARS:
            yield from _block_leaves(f"{name}.{attr}", value)


def global_leaves(global_vars: Mapping[str, GlobalVar]) -> Iterator[tuple[str, object, str]]:
    """Every global variable as (instance path ``globals.<name>``, its cell, ``"value"``)."""
    for var in global_vars.values():
        yield var.path, var, "value"


def _block_leaves(path: str, value: object) -> Iterator[tuple[str, object, str]]:
    if isinstance(value, FunctionBlock):
        for var in value._VARS:
            inner = getattr(value, var)
            if isinstance(inner, FunctionBlock):
                yield from _block_leaves(f"{path}.{var}", inner)
            else:
                yield f"{path}.{var}", value, var
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, FunctionBlock):
                yield from _block_leaves(f"{path}[{i}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, FunctionBlock):
                yield from _block_leaves(f"{path}[{key}]", item)


def copy_value(value: Any) -> Any:
    """A value detached from the live instance (scalars are shared, containers deep-copied)."""
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)


def is_clock(owner: object, attr: str) -> bool:
    """Does this leaf hold an app-time stamp in ns (a block's or program's ``CLOCK_VARS``)?

    App time restarts at 0 in every runtime, so such a value only means something in the time
    base it was taken in: the state layer stores it as an age and re-bases it on restore.
    """
    return attr in getattr(type(owner), "CLOCK_VARS", ())


def initial_values(
    programs: Mapping[str, Program], global_vars: Mapping[str, GlobalVar] | None = None
) -> dict[str, Any]:
    """Instance path → value of every leaf as the programs were constructed (detached), the
    global variables included (``globals.<name>``: the manifest's ``initial``).

    Recorded at load, before any retained or transferred state is written: the "initial value"
    of the three-way merge of a version change (runtime.state._merge).
    """
    return {
        path: copy_value(getattr(owner, attr))
        for name, prog in programs.items()
        for path, owner, attr in program_leaves(name, prog)
    } | {var.path: copy_value(var.value) for var in (global_vars or {}).values()}

"""Values of an app's state leaves: detached copies, clock stamps, the initial values."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from runtime.core._instances import InstanceTree
from runtime.core._program import GlobalVar, Program

_IMMUTABLE = (int, float, bool, str, bytes, type(None))


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
    leaves = InstanceTree(programs, global_vars).leaves()
    return {path: copy_value(getattr(owner, attr)) for path, (owner, attr) in leaves.items()}

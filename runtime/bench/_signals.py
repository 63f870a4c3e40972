"""Signal names of a loaded app: points, parameters and program/block instance paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.bench._expr import ExprError, Getter, signal_name
from runtime.core._fb import FunctionBlock
from runtime.core._loader import LoadedApp
from runtime.core.manifest import GLOBALS_ROOT

__all__ = ["make_resolver"]

_SCALARS = (bool, int, float, str)
_POINT_ATTRS = ("value", "quality", "forced")


def make_resolver(app: LoadedApp, now: Callable[[], float]) -> Callable[..., Getter]:
    """A resolver for compile_expr: names are looked up once, here, and never again per cycle.

    Order: point (``TT101``, ``TT101.quality``), parameter (``temp_sp``), program path
    (``batch.step``, ``alarms.temp.ACTIVE``, ``batch.phase.STATE_NAME``), global variable
    (``globals.control_on``), then ``t`` (seconds).
    """

    def resolve(parts: tuple[str | int, ...]) -> Getter:
        head = parts[0]
        name = signal_name(parts)
        if isinstance(head, str) and head in app.image:
            return _point(app, head, parts[1:], name)
        if len(parts) == 1 and head in app.parameters:
            param = app.parameters[str(head)]
            return lambda: param.value
        if isinstance(head, str) and head in app.programs:
            return _instance(app.programs[head], parts[1:], name)
        if head == GLOBALS_ROOT and len(parts) == 2 and parts[1] in app.globals:
            var = app.globals[str(parts[1])]
            return lambda: var.value
        if parts == ("t",):
            return now
        raise ExprError(
            f"unknown signal {name!r}: not a point ({_some(app.image.points)}), parameter "
            f"({_some(app.parameters)}), program ({', '.join(app.programs)}) or global "
            f"variable ({_some(app.globals)}); program paths look like batch.step or "
            "alarms.temp.ACTIVE, global variables like globals.control_on"
        )

    return resolve


def _some(items: Any) -> str:
    names = [getattr(i, "name", i) for i in items]
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "none"


def _point(app: LoadedApp, head: str, rest: tuple[str | int, ...], name: str) -> Getter:
    point = app.image[head]
    if not rest:
        return lambda: point.value
    if len(rest) == 1 and rest[0] == "quality":
        return lambda: point.quality.name  # compared as text: AT301.quality == "BAD"
    if len(rest) == 1 and rest[0] == "forced":
        return lambda: point.forced
    raise ExprError(f"{name!r}: a point offers {', '.join(_POINT_ATTRS)} (e.g. {head}.quality)")


def _instance(program: object, rest: tuple[str | int, ...], name: str) -> Getter:
    if not rest:
        raise ExprError(f"{name!r} is a program; name one of its variables or blocks")
    parent: Any = program
    for part in rest[:-1]:
        parent = _step(parent, part, name)
    last = rest[-1]
    value = _step(parent, last, name)
    if isinstance(value, FunctionBlock):
        outs = ", ".join(list(type(value).OUTPUTS)[:8])
        raise ExprError(
            f"{name!r} is a {type(value).__name__} block, not a value; name one of its "
            f"variables, e.g. {name}.{next(iter(type(value).OUTPUTS), 'Q')} (outputs: {outs})"
        )
    if not isinstance(value, _SCALARS):
        raise ExprError(f"{name!r} is a {type(value).__name__}, not a number, text or boolean")
    # The parent object is fixed for the run; the variable itself is read on every sample.
    if isinstance(last, int):
        return lambda: parent[last]
    return lambda: getattr(parent, last)


def _step(obj: Any, part: str | int, name: str) -> Any:
    try:
        if isinstance(part, int):
            return obj[part]
        if part.startswith("_"):
            raise AttributeError(part)  # private state is not part of an app's interface
        return getattr(obj, part)
    except (AttributeError, IndexError, KeyError, TypeError):
        raise ExprError(f"unknown signal {name!r}: no {part!r} in {type(obj).__name__}") from None

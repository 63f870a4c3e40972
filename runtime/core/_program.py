"""Programs (POUs) and what they see of their app: points, parameters, globals, a random source."""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any, ClassVar

import structlog

from hal import Point, ProcessImage, Value
from runtime.core._declare import AppConfigError, Declared
from runtime.core._fb import CycleContext, wireable
from runtime.core.manifest import GLOBALS_ROOT, GlobalSpec, ParameterSpec


class Parameter:
    """A live parameter value; operators write it between cycles, programs read ``.value``."""

    __slots__ = ("name", "spec", "value")

    def __init__(self, spec: ParameterSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.value: Any = spec.check(spec.default)

    def set(self, value: object) -> Value:
        """Validate against type and range, then store; returns the previous value."""
        checked = self.spec.check(value)
        old: Value = self.value
        self.value = checked
        return old

    def __repr__(self) -> str:
        return f"<Parameter {self.name}={self.value!r}>"


class GlobalVar:
    """A global variable's live value; programs read and write ``.value`` (not coerced: the
    typed declarations, ``BoolGlobal("control_on")``, let mypy check what is written)."""

    __slots__ = ("name", "path", "spec", "value")

    def __init__(self, spec: GlobalSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.path = f"{GLOBALS_ROOT}.{spec.name}"  # its instance path (retain, merge, bench)
        self.value: Any = spec.initial_value()

    def __repr__(self) -> str:
        return f"<GlobalVar {self.name}={self.value!r}>"


wireable(Parameter, GlobalVar)  # a block input may read one at every call: PID(SP=self.sp)


def build_globals(specs: list[GlobalSpec]) -> dict[str, GlobalVar]:
    """The global variables of a manifest at their initial values, in manifest order."""
    return {g.name: GlobalVar(g) for g in specs}


class AppContext:
    """The handle a program receives at construction: the only door to points, parameters and
    global variables."""

    def __init__(
        self,
        *,
        app_name: str,
        image: ProcessImage,
        parameters: Mapping[str, Parameter],
        seed: int = 0,
        global_vars: Mapping[str, GlobalVar] | None = None,
    ) -> None:
        self.app_name = app_name
        self._image = image
        self._parameters = parameters
        self.globals: Mapping[str, GlobalVar] = global_vars or {}
        self._seed = seed
        self._program = ""
        self.programs: dict[str, Program] = {}  # filled by the loader, in manifest order
        self.log = structlog.get_logger("vplc.app").bind(app=app_name)

    def point(self, name: str) -> Point:
        """The live cell of an I/O point declared in the manifest's ``points``."""
        if name not in self._image:
            known = ", ".join(p.name for p in self._image) or "none"
            raise AppConfigError(
                f"program {self._program!r} uses point {name!r}, which the manifest does not "
                f"declare under 'points' (declared: {known})"
            )
        point = self._image[name]
        # Who asked for which point: the output check runs per task over the outputs its
        # programs can write, and names the program when a write is invalid.
        if self._program and self._program not in point.users:
            point.users = (*point.users, self._program)
        return point

    def point_names(self, prefix: str = "") -> list[str]:
        """Names of the declared points starting with ``prefix``, in manifest order.

        Generic programs (an alarm per analogue input of a unit) find their points here.
        """
        return [p.name for p in self._image if p.name.startswith(prefix)]

    def param(self, name: str) -> Parameter:
        """A parameter declared in the manifest's ``parameters``."""
        try:
            return self._parameters[name]
        except KeyError:
            known = ", ".join(self._parameters) or "none"
            raise AppConfigError(
                f"program {self._program!r} uses parameter {name!r}, which the manifest does "
                f"not declare under 'parameters' (declared: {known})"
            ) from None

    def global_var(self, name: str) -> GlobalVar:
        """A global variable declared in the manifest's ``globals``."""
        try:
            return self.globals[name]
        except KeyError:
            known = ", ".join(self.globals) or "none"
            raise AppConfigError(
                f"program {self._program!r} uses global variable {name!r}, which the manifest "
                f"does not declare under 'globals' (declared: {known})"
            ) from None

    def program(self, name: str) -> Program:
        """Another program of the same app, looked up by name.

        Data shared between programs belongs in the manifest's ``globals`` (typed, retained,
        merged); this remains for tools and tests. Look it up when executing, not in
        ``__init__``: programs are built in manifest order, and an online change replaces them
        all together.
        """
        try:
            return self.programs[name]
        except KeyError:
            raise AppConfigError(
                f"program {self._program!r} asked for program {name!r}, which this app does "
                f"not have (programs: {', '.join(self.programs) or 'none'})"
            ) from None

    def random(self, stream: str = "") -> random.Random:
        """A seeded random source; the same seed and stream name give the same sequence."""
        return random.Random(f"{self._seed}:{self._program}:{stream}")


class Program:
    """Base of a program (POU). Subclasses build blocks in ``__init__`` and run ``execute``.

    ``VARS`` declares program variables (name → initial value). Function-block attributes
    (single, or in lists/dicts) and VARS make up the program's state for snapshots, retain
    and online change; instance paths look like ``temp_pid.I`` or ``alarms[3].UNACKED``.

    I/O points, parameters and global variables are declared on the class, typed
    (``tt = RealIn("TT101")``, ``temp_sp = RealParam("temp_sp")``, ``on = BoolGlobal("on")``:
    runtime.core._declare); ``__init__`` binds them, with ``prefix`` in front of every name (one
    class, many units: ``prefix="R3_"`` binds ``R3_TT101``).
    """

    VARS: ClassVar[Mapping[str, Any]] = {}
    # VARS holding app-time stamps in ns (``ctx.now_ns`` at some event): retained as ages, so
    # an elapsed time survives a warm restart (app time restarts at 0 in every runtime).
    CLOCK_VARS: ClassVar[tuple[str, ...]] = ()
    # attribute → declaration, over the whole class hierarchy (filled by __init_subclass__)
    DECLARED: ClassVar[Mapping[str, Declared[Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Declared[Any]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Declared):
                    found[attr] = value
                elif attr in found:  # a subclass replaced the declaration by something else
                    del found[attr]
        cls.DECLARED = found

    def __init__(self, app: AppContext, *, prefix: str = "") -> None:
        self.app = app
        for var, initial in self.VARS.items():
            setattr(self, var, copy.copy(initial))
        problems = []
        for attr, decl in self.DECLARED.items():
            try:
                setattr(self, attr, decl.bind(app, prefix))
            except AppConfigError as exc:
                problems.append(f"{attr} = {decl!r}: {exc}")
        if problems:  # every wrong declaration at once, not one per attempt
            raise AppConfigError("; ".join(problems))

    def execute(self, ctx: CycleContext) -> None:
        raise NotImplementedError(f"{type(self).__name__}.execute")

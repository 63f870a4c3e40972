"""Typed declarations on a program class (``tt = RealIn("TT101")``), bound when it is built.

A declaration is a class attribute naming a point, parameter or global variable of the
manifest and the IEC types it accepts. ``Program.__init__`` binds every declaration of its
class to the live cell (a hal Point, a Parameter, a GlobalVar), stored as an instance
attribute of the same name: the hot path reads ``self.tt.value`` exactly as it read a cell
fetched with ``app.point("TT101")`` (an instance-dict lookup and a slot read; the
declaration, a non-data descriptor, is never consulted again). A missing name, a wrong type
or a wrong direction refuses the app before RUN, as a ManifestError naming the program's
YAML path. For mypy, reading the attribute on an instance gives a typed view: ``.value`` is
float, bool, int or str, an input's value is read-only, so is a parameter's.

Program ``prefix`` (``super().__init__(app, prefix="R3_")``) goes in front of every declared
name unless the declaration says ``prefixed=False`` (a plant-wide point or global read by
every unit).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, overload

from hal import Direction, IecType, Point, Quality

__all__ = [
    "AppConfigError",
    "BoolGlobal",
    "BoolIn",
    "BoolOut",
    "BoolParam",
    "Declared",
    "GlobalValue",
    "InputPoint",
    "IntGlobal",
    "IntIn",
    "IntOut",
    "IntParam",
    "OutputPoint",
    "ParamValue",
    "RealGlobal",
    "RealIn",
    "RealOut",
    "RealParam",
    "StringGlobal",
    "StringIn",
    "StringOut",
    "StringParam",
]


class Binder(Protocol):
    """What a declaration binds through: ``runtime.AppContext`` (a protocol here, so this
    module needs nothing of the program module that uses it)."""

    def point(self, name: str) -> Point: ...
    def param(self, name: str) -> Any: ...
    def global_var(self, name: str) -> Any: ...


class AppConfigError(Exception):
    """A program asked for something its manifest does not declare (or declares otherwise)."""


T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
V = TypeVar("V")


class InputPoint(Protocol[T_co]):
    """An input point as a program sees it: a typed value it reads, its quality and time."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> T_co: ...
    @property
    def quality(self) -> Quality: ...
    @property
    def timestamp_ns(self) -> int: ...
    @property
    def forced(self) -> bool: ...


class OutputPoint(Protocol[T]):
    """An output point as a program sees it: a typed value it writes (and may read back)."""

    value: T

    @property
    def name(self) -> str: ...
    @property
    def quality(self) -> Quality: ...
    @property
    def forced(self) -> bool: ...


class ParamValue(Protocol[T_co]):
    """A parameter as a program sees it: operators write it, the program reads ``.value``."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> T_co: ...


class GlobalValue(Protocol[T]):
    """A global variable as a program sees it: read and written through ``.value``."""

    value: T

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...


_TYPES = {
    "BOOL": (IecType.BOOL,),
    "INT": (IecType.INT, IecType.DINT),
    "REAL": (IecType.REAL, IecType.LREAL),
    "STRING": (IecType.STRING,),
}


class Declared(Generic[V]):
    """Base of the declarations: the manifest name, and how the program instance gets its cell.

    ``V`` is the view mypy gives the instance attribute; at run time the attribute is the cell.
    """

    KIND: ClassVar[str] = ""
    TYPES: ClassVar[tuple[IecType, ...]] = ()

    __slots__ = ("attr", "name", "prefixed")

    def __init__(self, name: str, *, prefixed: bool = True) -> None:
        self.name = name
        self.prefixed = prefixed
        self.attr = "?"

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> V: ...
    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        # Only reached when the instance attribute is missing: the program's __init__ did not
        # run Program.__init__, which binds every declaration.
        raise AttributeError(
            f"{type(obj).__name__}.{self.attr} ({self!r}) is bound by Program.__init__; "
            "the program's __init__ must call super().__init__(app)"
        )

    def __repr__(self) -> str:
        extra = ", prefixed=False" if not self.prefixed else ""
        return f"{type(self).__name__}({self.name!r}{extra})"

    def full_name(self, prefix: str) -> str:
        """The manifest name this declaration binds to under a program's ``prefix``."""
        return prefix + self.name if self.prefixed else self.name

    def bind(self, app: Binder, prefix: str) -> object:
        """The live cell for one program instance; raise AppConfigError saying what is wrong."""
        raise NotImplementedError

    def _types_text(self) -> str:
        return " or ".join(t.value for t in self.TYPES)

    def _mistyped(self, name: str, what: str) -> str:
        return f"{self.KIND} {name!r} is {what}, {type(self).__name__} needs {self._types_text()}"


class _PointDecl(Declared[V]):
    KIND = "point"
    DIRECTION: ClassVar[Direction]

    def bind(self, app: Binder, prefix: str) -> object:
        name = self.full_name(prefix)
        point = app.point(name)
        if point.direction is not self.DIRECTION:
            mine = type(self).__name__
            other = mine[:-2] + "Out" if self.DIRECTION is Direction.IN else mine[:-3] + "In"
            raise AppConfigError(
                f"point {name!r} is an {point.direction.value}put, "
                f"{mine} declares an {self.DIRECTION.value}put (declare it with {other})"
            )
        if point.type not in self.TYPES:
            raise AppConfigError(self._mistyped(name, f"a {point.type.value} point"))
        return point


class _In(_PointDecl[InputPoint[T]]):
    DIRECTION = Direction.IN


class _Out(_PointDecl[OutputPoint[T]]):
    DIRECTION = Direction.OUT


class _ParamDecl(Declared[ParamValue[T]]):
    KIND = "parameter"

    def bind(self, app: Binder, prefix: str) -> object:
        name = self.full_name(prefix)
        param = app.param(name)
        if param.spec.type not in self.TYPES:
            raise AppConfigError(self._mistyped(name, f"of type {param.spec.type.value}"))
        return param


class _GlobalDecl(Declared[GlobalValue[T]]):
    KIND = "global variable"

    def bind(self, app: Binder, prefix: str) -> object:
        name = self.full_name(prefix)
        var = app.global_var(name)
        if var.spec.type not in self.TYPES:
            raise AppConfigError(self._mistyped(name, f"of type {var.spec.type.value}"))
        return var


class BoolIn(_In[bool]):
    """A BOOL input point."""

    TYPES = _TYPES["BOOL"]


class IntIn(_In[int]):
    """An INT or DINT input point."""

    TYPES = _TYPES["INT"]


class RealIn(_In[float]):
    """A REAL or LREAL input point."""

    TYPES = _TYPES["REAL"]


class StringIn(_In[str]):
    """A STRING input point."""

    TYPES = _TYPES["STRING"]


class BoolOut(_Out[bool]):
    """A BOOL output point."""

    TYPES = _TYPES["BOOL"]


class IntOut(_Out[int]):
    """An INT or DINT output point."""

    TYPES = _TYPES["INT"]


class RealOut(_Out[float]):
    """A REAL or LREAL output point."""

    TYPES = _TYPES["REAL"]


class StringOut(_Out[str]):
    """A STRING output point."""

    TYPES = _TYPES["STRING"]


class BoolParam(_ParamDecl[bool]):
    """A BOOL parameter."""

    TYPES = _TYPES["BOOL"]


class IntParam(_ParamDecl[int]):
    """An INT or DINT parameter."""

    TYPES = _TYPES["INT"]


class RealParam(_ParamDecl[float]):
    """A REAL or LREAL parameter."""

    TYPES = _TYPES["REAL"]


class StringParam(_ParamDecl[str]):
    """A STRING parameter."""

    TYPES = _TYPES["STRING"]


class BoolGlobal(_GlobalDecl[bool]):
    """A BOOL global variable."""

    TYPES = _TYPES["BOOL"]


class IntGlobal(_GlobalDecl[int]):
    """An INT or DINT global variable."""

    TYPES = _TYPES["INT"]


class RealGlobal(_GlobalDecl[float]):
    """A REAL or LREAL global variable."""

    TYPES = _TYPES["REAL"]


class StringGlobal(_GlobalDecl[str]):
    """A STRING global variable."""

    TYPES = _TYPES["STRING"]

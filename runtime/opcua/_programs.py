"""The instance tree for the address space: leaves of programs and blocks, read between cycles.

Scan side: :func:`catalogue` lists every leaf of the running app (program ``VARS``, each
block's INPUTS / OUTPUTS / STATE, nested blocks in place, the global variables) with the
OPC UA type its value has at start; :class:`ProgramReader` reads their values in one go on the
scan thread *between* two cycles (``engine.submit``), so a sample is one cycle's state, never
half of one. Paths are the instance tree's (``control.temp_pid.I``), so the NodeIds built from
them stay the same across an online change; a leaf the new version no longer has reads None.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.core._fb import FunctionBlock
from runtime.core._program import Program

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = [
    "BlockInfo",
    "LeafInfo",
    "ProgramReader",
    "ProgramValues",
    "catalogue",
    "leaf_kind",
    "plain",
]


@dataclass(frozen=True)
class LeafInfo:
    """One readable leaf: its instance path, its owner's path, and how it is shown."""

    path: str
    owner: str  # the program, block or ``globals`` that holds it
    name: str  # browse name (the variable's name)
    group: str  # Input | Output | State | Var | Global
    kind: str  # b (Boolean) | i (Int64) | f (Double) | s (String)


@dataclass(frozen=True)
class BlockInfo:
    path: str
    parent: str
    name: str
    type_name: str


def leaf_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    return "s"  # text, enums, None, anything else: shown as its text


def _split(path: str) -> tuple[str, str]:
    """``control.unit.valve`` → (``control.unit``, ``valve``)."""
    parent, _, name = path.rpartition(".")
    return parent, name


def catalogue(engine: ScanEngine) -> tuple[list[str], list[BlockInfo], list[LeafInfo]]:
    """(program names, blocks, leaves) of the app running now, in walk order."""
    tree = engine.app.tree
    blocks = []
    for path, block in tree.blocks().items():
        parent, name = _split(path)
        blocks.append(BlockInfo(path, parent, name, type(block).__name__))
    leaves = []
    for path, (owner, var) in tree.leaves().items():
        parent, name = _split(path)
        if isinstance(owner, FunctionBlock):
            cls = type(owner)
            inputs: frozenset[str] = getattr(cls, "_INPUT_NAMES", frozenset())
            outputs = {n for k in cls.__mro__ for n in k.__dict__.get("OUTPUTS", {})}
            group = "Input" if var in inputs else "Output" if var in outputs else "State"
        elif isinstance(owner, Program):
            group = "Var"
        else:
            group = "Global"
        leaves.append(LeafInfo(path, parent, name, group, leaf_kind(getattr(owner, var, None))))
    return list(tree.programs), blocks, leaves


class ProgramReader:
    """Reads the catalogued leaves of whatever version runs now, between two cycles."""

    def __init__(self, engine: ScanEngine, paths: list[str]) -> None:
        self.engine = engine
        self.paths = paths
        self._app: Any = None
        self._accessors: list[tuple[object, str] | None] = []
        self._pending: Future[list[Any]] | None = None

    def _bind(self) -> None:
        # Walked off the scan thread (reads only); redone when an online change swapped apps.
        app = self.engine.app
        if app is self._app:
            return
        leaves = app.tree.leaves()
        self._accessors = [leaves.get(p) for p in self.paths]
        self._app = app

    def poll(self) -> list[Any] | None:
        """The values read by the last request if it is done (and a new request sent);
        None while one is still waiting for the scan (a stopped engine reads nothing)."""
        pending = self._pending
        if pending is not None and not pending.done():
            return None
        result = None
        if pending is not None and pending.exception() is None:
            result = pending.result()
        self._bind()
        accessors = self._accessors
        self._pending = self.engine.submit(lambda _e: _read(accessors))
        return result


def _read(accessors: list[tuple[object, str] | None]) -> list[Any]:
    return [None if acc is None else getattr(acc[0], acc[1], None) for acc in accessors]


def plain(value: Any) -> Any:
    """A leaf value as something the pipe carries and a Variant holds (others as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class ProgramValues:
    """The child's copy of the last values read, fed by the pipe's ``programs`` texts."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.seq = 0
        self.fallback: Any = None  # the link's own text handler, for every other text

    def on_text(self, what: str, idx: int, value: Any) -> None:
        if what == "programs":
            self.values = value
            self.seq += 1
        elif self.fallback is not None:
            self.fallback(what, idx, value)

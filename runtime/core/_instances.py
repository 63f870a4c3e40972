"""The instance tree of a loaded app: programs, their function blocks, state leaves, globals.

One walk and one matching rule for everything that looks at an app's instances (retain,
snapshots, online change, commands, telemetry, the live view, the bench):

- a program's state leaves are its ``VARS``, in declaration order;
- its blocks are the attributes holding a :class:`FunctionBlock` — alone, or as items of a
  list, tuple or dict — and, inside a block, its declared variables holding a block
  (nested); matched by ``isinstance``, never by name or shape;
- a block's leaves are its declared variables that hold no block;
- the global variables are leaves ``globals.<name>``.

Paths look like ``control.batch_counter``, ``control.temp_pid.I``,
``alarms.alarms[3].UNACKED`` or ``globals.recipe``. Every question walks the live objects
(cheap, and right even if a program replaces a block); an online change loads a new app, with
its own tree, so what it adds is found there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar

from runtime.core._fb import FunctionBlock
from runtime.core._program import GlobalVar, Program

__all__ = ["Accessor", "InstanceTree"]

Accessor = tuple[object, str]  # (owner object, attribute name): where one leaf value lives
B = TypeVar("B")


class InstanceTree:
    """Programs, blocks and leaves of one app, by instance path."""

    def __init__(
        self, programs: Mapping[str, Program], global_vars: Mapping[str, GlobalVar] | None = None
    ) -> None:
        self.programs = programs
        self.global_vars: Mapping[str, GlobalVar] = global_vars or {}

    # ------------------------------------------------------------------------ blocks
    def blocks(self) -> dict[str, FunctionBlock]:
        """Every function-block instance by path (``program.path``), in walk order."""
        return {
            f"{name}.{path}": block
            for name, prog in self.programs.items()
            for path, block in program_blocks(prog)
        }

    def of_type(self, cls: type[B]) -> list[tuple[str, B]]:
        """The blocks that are instances of ``cls`` (subclasses included), with their paths."""
        return [(path, b) for path, b in self.blocks().items() if isinstance(b, cls)]

    def find(self, path: str) -> Program | FunctionBlock | None:
        """The program (``name``) or block (``program.path``) at ``path``; None if none."""
        name, dot, inner = path.partition(".")
        prog = self.programs.get(name)
        if not dot or prog is None:
            return prog if not dot else None
        return next((b for p, b in program_blocks(prog) if p == inner), None)

    def program_of(self, path: str) -> Program | None:
        """The program that owns the instance at ``path``."""
        return self.programs.get(path.partition(".")[0].partition("[")[0])

    # ------------------------------------------------------------------------ leaves
    def leaves(self) -> dict[str, Accessor]:
        """Every state leaf of every program, then the global variables, by path."""
        out: dict[str, Accessor] = {}
        for name in self.programs:
            out.update(self.program_leaves(name))
        out.update(self.global_leaves())
        return out

    def program_leaves(self, name: str) -> dict[str, Accessor]:
        """The state leaves of one program, by path."""
        prog = self.programs[name]
        return {f"{name}.{path}": acc for path, acc in _program_leaves(prog)}

    def global_leaves(self, *, retained_only: bool = False) -> dict[str, Accessor]:
        """The global variables (``globals.<name>``): each a cell whose ``value`` is the leaf."""
        return {
            var.path: (var, "value")
            for var in self.global_vars.values()
            if var.spec.retain or not retained_only
        }


def program_blocks(program: Program) -> Iterator[tuple[str, FunctionBlock]]:
    """Every block a program owns, with its path inside the program (``temp_pid``,
    ``alarms[3]``, ``unit.valve``); the walk behind :meth:`InstanceTree.blocks`."""
    for path, owner, var in _walk_program(program):
        if var is None:
            yield path, owner  # type: ignore[misc]


def _program_leaves(program: Program) -> Iterator[tuple[str, Accessor]]:
    for path, owner, var in _walk_program(program):
        if var is not None:
            yield path, (owner, var)


def _walk_program(program: Program) -> Iterator[tuple[str, object, str | None]]:
    """(path, owner, variable) of each leaf, and (path, block, None) of each block, in order:
    the VARS, then every block attribute with its variables (nested blocks in place)."""
    for var in program.VARS:
        yield var, program, var
    for attr, value in vars(program).items():
        if attr not in program.VARS:
            yield from _walk(attr, value)


def _walk(path: str, value: object) -> Iterator[tuple[str, object, str | None]]:
    if isinstance(value, FunctionBlock):
        yield path, value, None
        for var in value._VARS:
            inner = getattr(value, var)
            if isinstance(inner, FunctionBlock):
                yield from _walk(f"{path}.{var}", inner)
            else:
                yield f"{path}.{var}", value, var
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if isinstance(item, FunctionBlock):
                yield from _walk(f"{path}[{i}]", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, FunctionBlock):
                yield from _walk(f"{path}[{key}]", item)

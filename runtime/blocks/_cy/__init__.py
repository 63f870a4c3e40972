"""Cython builds of the standard blocks, generated from their Python modules at install time.

Every module of runtime/blocks that defines a block is compiled to ``runtime.blocks._cy.<name>``
(setup.py, with the .pyx that ``_gen.py`` writes from the .py). ``load()`` imports them and
returns the compiled block classes by name; it raises ImportError, so that ``runtime.blocks``
falls back to the pure-Python blocks, when a module was not built (no compiler or Cython),
was built from another version of its .py (edited but not rebuilt: it would run old logic),
or lacks a block its .py defines.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

__all__ = ["REBUILD", "block_classes", "load", "python_blocks"]

REBUILD = "make install (or: python setup.py build_ext --inplace)"
_BLOCKS = Path(__file__).resolve().parent.parent  # runtime/blocks


def block_classes(module: ModuleType) -> dict[str, type]:
    """The public block classes a pure-Python block module defines, by name."""
    from runtime.core._fb import FunctionBlock

    return {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, FunctionBlock)
        and obj.__module__ == module.__name__
        and not name.startswith("_")
    }


def _python_modules() -> dict[str, ModuleType]:
    """Every pure-Python module of runtime.blocks that defines a block, by short name."""
    found = {}
    for info in pkgutil.iter_modules([str(_BLOCKS)]):
        if info.ispkg or info.name.startswith("_") or info.name == "pure":
            continue
        module = importlib.import_module(f"runtime.blocks.{info.name}")
        if block_classes(module):
            found[info.name] = module
    return found


def python_blocks() -> dict[str, type]:
    """Name → pure-Python class of every block of runtime/blocks (found, not listed)."""
    return {
        name: klass
        for module in _python_modules().values()
        for name, klass in block_classes(module).items()
    }


def load() -> dict[str, type]:
    """Name → compiled class for every block of runtime/blocks; ImportError if not built."""
    from runtime.blocks._cy._gen import source_hash

    classes: dict[str, type] = {}
    for name, py_module in _python_modules().items():
        try:
            compiled = importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:
            msg = f"{__name__}.{name} not built ({exc}): {REBUILD} with Cython and a C compiler"
            raise ImportError(msg) from exc
        source = Path(py_module.__file__ or "")
        if getattr(compiled, "SOURCE_HASH", None) != source_hash(source):
            raise ImportError(f"{__name__}.{name} was built from another {source.name}: {REBUILD}")
        for block in block_classes(py_module):
            klass = getattr(compiled, block, None)
            if not isinstance(klass, type):
                raise ImportError(f"{__name__}.{name} has no compiled {block}: {REBUILD}")
            classes[block] = klass
    return classes

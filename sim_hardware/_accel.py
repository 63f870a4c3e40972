"""Runs the hot simulator modules from their Cython build, or from source when asked or stale.

The modules in ``HOT_MODULES`` are plain typed Python that setup.py compiles (Cython pure-Python
mode, an augmenting ``.pxd`` next to each ``.py``); the build puts ``<name>.<abi>.so`` next to
the ``.py``, where it shadows the source at import. A meta-path finder, installed by
``sim_hardware/__init__.py`` before any other simulator import, imports the sources instead when

* the environment variable ``VPLC_SIM=python`` is set (parity tests, debugging), or
* a compiled module is missing or older than its ``.py``, its ``.pxd`` or a ``.pxd`` it cimports:
  an edit that was not rebuilt must not run stale code (a warning names the modules and how
  to rebuild).

All or none: compiled modules cimport each other's C types (the model steps C valves), so one
cannot sit on top of an interpreted other. ``implementation()`` says which runs ('cython' or
'python'). Standard library only: setup.py reads ``HOT_MODULES`` here before anything is built.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec, PathFinder, SourceFileLoader
from pathlib import Path
from types import ModuleType

__all__ = ["HOT_MODULES", "REBUILD", "fallback_reason", "implementation", "install"]

# Compiled by setup.py; each has an augmenting .pxd next to its .py. Add new ones here.
HOT_MODULES = (
    "sim_hardware.components",
    "sim_hardware.plants._bioreactor_model",
    "sim_hardware.plants._skid_readings",
    "sim_hardware._sampling",
)
REBUILD = "python setup.py build_ext --inplace (or: make install)"
# A wheel install writes a module's .so and .py moments apart, in either order: not stale.
_MTIME_SLACK_S = 2.0
_EXT = tuple(EXTENSION_SUFFIXES)
_ROOT = Path(__file__).resolve().parent.parent  # the directory holding this sim_hardware

_log = logging.getLogger("vplc.sim")
_logged = False


def _sources() -> list[Path]:
    return [_ROOT.joinpath(*m.split(".")).with_suffix(".py") for m in HOT_MODULES]


def _pxd_deps(name: str, pxd_of: dict[str, Path]) -> list[Path]:
    """The module's own .pxd and those of the hot modules its .pxd cimports from."""
    own = pxd_of[name]
    text = own.read_text(encoding="utf-8") if own.exists() else ""
    used = [
        pxd
        for other, pxd in pxd_of.items()
        if other != name and (f"from {other} cimport" in text or f"cimport {other}" in text)
    ]
    return [own, *used]


def _decide() -> str:
    """Why the hot modules must run from source ('' when they can all run compiled)."""
    if os.environ.get("VPLC_SIM", "").strip().lower() == "python":
        return "VPLC_SIM=python"
    sources = _sources()
    pxd_of = {m: src.with_suffix(".pxd") for m, src in zip(HOT_MODULES, sources, strict=True)}
    why = []
    for name, src in zip(HOT_MODULES, sources, strict=True):
        spec = PathFinder.find_spec(name, [str(src.parent)])
        origin = spec.origin if spec is not None else None
        if not origin or not origin.endswith(_EXT):
            why.append(f"{name} not compiled (no Cython or C compiler at install)")
            continue
        built = Path(origin).stat().st_mtime + _MTIME_SLACK_S
        # its own .py and .pxd, and the .pxd of each hot module it cimports: a changed C type
        # makes the modules compiled against it stale too
        deps = [src, *_pxd_deps(name, pxd_of)]
        newer = [f.name for f in deps if f.exists() and f.stat().st_mtime > built]
        if newer:
            why.append(f"{name} stale ({', '.join(newer)} newer than its build)")
    return "; ".join(why)


class _HotModuleFinder(MetaPathFinder):
    """Finds hot modules as the path finder does, but hands back their source when it must."""

    def __init__(self) -> None:
        self.reason: str | None = None  # decided at the first hot import, for all of them

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in HOT_MODULES:
            return None
        if self.reason is None:
            self.reason = _decide()
            if "stale" in self.reason:
                _log.warning(
                    "simulator runs from Python source (slower): %s. Rebuild: %s",
                    self.reason,
                    REBUILD,
                )
        spec = PathFinder.find_spec(fullname, path)
        if not self.reason or spec is None or spec.origin is None:
            return spec
        found = Path(spec.origin)
        source = found.with_name(found.name.split(".", 1)[0] + ".py")
        if not source.exists():  # installed compiled-only
            return spec
        return importlib.util.spec_from_file_location(
            fullname, source, loader=SourceFileLoader(fullname, str(source))
        )


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once); call before importing hot modules."""
    if not any(isinstance(f, _HotModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _HotModuleFinder())


def _is_compiled(module: str) -> bool:
    spec = importlib.import_module(module).__spec__
    return spec is not None and (spec.origin or "").endswith(_EXT)


def implementation() -> str:
    """'cython' when every hot module runs compiled, else 'python'."""
    return "cython" if all(_is_compiled(m) for m in HOT_MODULES) else "python"


def fallback_reason() -> str:
    """Why the hot modules run from source ('' when they run compiled)."""
    if implementation() == "cython":
        return ""
    finder = next((f for f in sys.meta_path if isinstance(f, _HotModuleFinder)), None)
    return (finder.reason if finder else None) or "imported before the finder was installed"


def log_implementation() -> None:
    """Log, once per process, which implementation the simulator runs (debug level)."""
    global _logged
    if not _logged:
        _logged = True
        _log.debug("simulator: %s %s", implementation(), fallback_reason())

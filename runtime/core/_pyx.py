"""Build an app's own Cython blocks: ``*.pyx`` next to app.yaml → importable app modules.

How an app author uses it: put ``fastblocks.pyx`` next to ``app.yaml`` and import it from the
app's Python modules like any sibling module (``from .fastblocks import MYBLOCK`` or
``from fastblocks import ...`` as the app already does for its .py modules). At load time the
runtime compiles every ``*.pyx`` there (Cython and a C compiler are needed the first time),
into a cache keyed by the content hash of the source (plus the app's ``.pxd`` files, the
Python ABI, the Cython version and the compile flags), so unchanged sources are never
rebuilt and a changed one gets a new directory (online change loads it side by side).
The cache is ``$VPLC_PYX_CACHE`` if set, else ``<app>/.vplc-build/`` if the app folder is
writable, else ``~/.cache/vplc/pyx/``.

A Cython block that should behave as a FunctionBlock (snapshots, retain, online change)
subclasses the runtime's compiled base and declares its ports twice (the standard blocks
are instead generated from their .py, runtime/blocks/_cy/_gen.py)::

    from runtime.blocks._cy._base cimport Block
    from runtime.blocks._cy._base import declare

    cdef class DEADBAND(Block):
        INPUTS = {"IN": 0.0, "BAND": 1.0}
        OUTPUTS = {"OUT": 0.0}
        STATE = {}
        _VARS, _INPUT_NAMES, __annotations__ = declare(INPUTS, OUTPUTS, STATE)
        cdef public double IN, BAND, OUT

        def __cinit__(self):
            self.BAND = 1.0

        def __call__(self, ctx, **inputs):
            for name, value in inputs.items():
                setattr(self, name, value)
            self.execute(ctx)

        cpdef execute(self, ctx):
            if abs(self.IN - self.OUT) > self.BAND:
                self.OUT = self.IN

Such blocks are FunctionBlocks for ``isinstance`` (``Block`` is registered with
``FunctionBlock.register``); their ``snapshot()``/``restore()`` come from ``Block``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["PyxBuildError", "build_app_extensions"]

_RUNTIME_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the runtime package
# Same float-exactness flags as the standard blocks (see setup.py).
_CFLAGS = ("-ffp-contract=off", "-fno-fast-math")
_MACROS = (("CYTHON_USE_TYPE_SPECS", "1"),)


class PyxBuildError(Exception):
    """A .pyx file of an app could not be compiled; the message holds the compiler output."""

    def __init__(self, source: Path, message: str) -> None:
        super().__init__(f"{source.name}: {message}")
        self.source = source


def build_app_extensions(app_dir: Path | str) -> list[str]:
    """Compile the app's ``*.pyx`` (if needed) and return the directories holding the modules.

    The loader appends these directories to the app package's ``__path__``, which makes each
    ``name.pyx`` importable as ``<app package>.name``. No .pyx files: an empty list.
    """
    app_dir = Path(app_dir).resolve()
    sources = sorted(app_dir.glob("*.pyx"))
    if not sources:
        return []
    pxds = sorted(app_dir.glob("*.pxd"))
    cache = _cache_dir(app_dir)
    dirs: list[str] = []
    for source in sources:
        out = cache / f"{source.stem}-{_key(source, pxds)}"
        if not _built(out, source.stem):
            _build(source, out, app_dir)
        dirs.append(str(out))
    return dirs


def _cache_dir(app_dir: Path) -> Path:
    env = os.environ.get("VPLC_PYX_CACHE")
    if env:
        return Path(env)
    if os.access(app_dir, os.W_OK):
        return app_dir / ".vplc-build"
    return Path.home() / ".cache" / "vplc" / "pyx"


def _key(source: Path, pxds: list[Path]) -> str:
    h = hashlib.sha256()
    for path in (source, *pxds, _RUNTIME_ROOT / "runtime/blocks/_cy/_base.pxd"):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(repr((sys.implementation.cache_tag, sysconfig.get_platform(), _CFLAGS)).encode())
    h.update(_cython_version().encode())
    return h.hexdigest()[:16]


def _cython_version() -> str:
    try:
        return importlib.metadata.version("Cython")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def _suffix() -> str:
    return str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")


def _built(out: Path, stem: str) -> bool:
    return (out / f"{stem}{_suffix()}").is_file()


def _build(source: Path, out: Path, app_dir: Path) -> None:
    if _cython_version() == "none":
        raise PyxBuildError(source, "Cython is not installed (pip install 'vplc[pyx]')")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{source.stem}-", dir=out.parent))
    try:
        cmd = [sys.executable, "-m", "runtime.core._pyx", str(source), str(work), str(app_dir)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_RUNTIME_ROOT), *sys.path])}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0 or not _built(work / "lib", source.stem):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise PyxBuildError(source, f"compilation failed:\n{tail}")
        try:
            os.replace(work / "lib", out)  # atomic: a half-built module is never seen
        except OSError:
            if not _built(out, source.stem):  # a concurrent build that won is fine
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _compile(source: Path, work: Path, app_dir: Path) -> None:
    """Run in a child process (``python -m runtime.core._pyx``): cythonize and compile one file."""
    # Imported by name: neither package is typed, and both are only needed for a build.
    cythonize: Any = importlib.import_module("Cython.Build").cythonize
    setuptools: Any = importlib.import_module("setuptools")
    Distribution, Extension = setuptools.Distribution, setuptools.Extension
    ext = Extension(
        source.stem,
        [str(source)],
        define_macros=list(_MACROS),
        extra_compile_args=list(_CFLAGS),
    )
    modules = cythonize(
        [ext],
        build_dir=str(work / "c"),
        include_path=[str(_RUNTIME_ROOT), str(app_dir)],
        compiler_directives={"language_level": 3, "auto_pickle": False},
        quiet=True,
    )
    dist = Distribution({"ext_modules": modules, "script_name": "setup.py"})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = str(work / "lib")
    cmd.build_temp = str(work / "tmp")
    cmd.ensure_finalized()
    cmd.run()


if __name__ == "__main__":
    _compile(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))

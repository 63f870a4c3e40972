"""Build hook: compile the Cython blocks and hot sim modules; install without them if impossible.

``pip install .`` / ``pip install -e .`` cythonize runtime/blocks/_cy/*.pyx, the runtime's
cores (runtime/core/_*.pyx) and the simulator's hot modules (``HOT_MODULES`` in
sim_hardware/_accel.py: plain .py with an augmenting .pxd).
Editable installs put the compiled modules next to the sources. Without Cython or a working C
compiler the install still succeeds, pure Python only (runtime.blocks says so at start-up).
Rebuild in place after editing one of them: ``python setup.py build_ext --inplace``.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# Outputs must be bit-identical to the pure-Python blocks: no a*b+c → FMA contraction, no
# fast-math reassociation (GCC contracts by default in GNU C mode, e.g. on aarch64).
UNIX_FLAGS = ["-ffp-contract=off", "-fno-fast-math"]
# Heap types, so the block classes carry a readable __annotations__ like the Python blocks.
MACROS = [("CYTHON_USE_TYPE_SPECS", "1")]
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "binding": False,
    "auto_pickle": False,
}
# The hot sim modules: C types come from their .pxd only (annotations stay for mypy), and
# ``**`` is C pow() as float.__pow__ calls it (not Cython's complex-safe power).
SIM_DIRECTIVES = {"language_level": 3, "annotation_typing": False, "cpow": True}
SIM_BUILD_DIR = "build/cython"  # generated C out of the package tree
# Python's ``x ** 2`` calls libm pow(); GCC would turn a C pow(x, 2.0) into x * x, which differs
# from glibc's pow() in the last bit now and then (the skid's exhaust filter dP did).
SIM_UNIX_FLAGS = ["-fno-builtin-pow"]


def _sim_modules() -> list[str]:
    # stdlib-only module: readable before anything is installed
    hot = runpy.run_path(str(HERE / "sim_hardware" / "_accel.py"))["HOT_MODULES"]
    return list(hot)


def _block_sources() -> dict[str, Path]:
    # stdlib-only generator (with its sibling _gentypes.py), as _accel.py: runs before install
    gen_dir = HERE / "runtime" / "blocks" / "_cy"
    sys.path.insert(0, str(gen_dir))
    try:
        gen = runpy.run_path(str(gen_dir / "_gen.py"))
    finally:
        sys.path.remove(str(gen_dir))
    return dict(gen["write_sources"](HERE / SIM_BUILD_DIR / "runtime" / "blocks" / "_cy"))


def _extensions() -> list:
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        print("vplc: Cython not available, installing the pure-Python blocks only", file=sys.stderr)
        return []
    # the blocks' compiled base, and the runtime's own compiled cores (runtime/core/_*.pyx, e.g.
    # the histogram)
    sources = sorted((HERE / "runtime" / "blocks" / "_cy").glob("*.pyx"))
    sources += sorted((HERE / "runtime" / "core").glob("_*.pyx"))
    exts = [
        Extension(
            ".".join(src.relative_to(HERE).with_suffix("").parts),
            [str(src.relative_to(HERE))],
            define_macros=MACROS,
        )
        for src in sources
    ]
    # the standard blocks: a .pyx generated from each block module (runtime/blocks/_cy/_gen.py)
    exts += [
        Extension(name, [str(pyx.relative_to(HERE))], define_macros=MACROS)
        for name, pyx in _block_sources().items()
    ]
    try:
        built = list(
            cythonize(exts, compiler_directives=DIRECTIVES, include_path=[str(HERE)], quiet=True)
        )
    except Exception as exc:  # a Cython error must not make the package uninstallable
        print(f"vplc: cythonize failed ({exc}); pure-Python blocks only", file=sys.stderr)
        built = []
    for name in _sim_modules():
        src = name.replace(".", "/") + ".py"
        try:  # one by one: a module that fails to cythonize runs from source, the rest compiled
            built += cythonize(
                [Extension(name, [src], extra_compile_args=SIM_UNIX_FLAGS)],
                compiler_directives=SIM_DIRECTIVES,
                build_dir=SIM_BUILD_DIR,
                quiet=True,
            )
        except Exception as exc:
            print(f"vplc: cythonize {src} failed ({exc}); it runs from source", file=sys.stderr)
    return built


class OptionalBuildExt(build_ext):
    """build_ext that adds the float-exactness flags and skips extensions it cannot build."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError and friends)
            print(
                f"vplc: cannot build C extensions ({exc}); pure-Python blocks only", file=sys.stderr
            )

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        if self.compiler.compiler_type == "unix":
            ext.extra_compile_args = [*UNIX_FLAGS, *ext.extra_compile_args]
        else:  # the sim modules' GCC flags mean nothing to another compiler
            ext.extra_compile_args = [a for a in ext.extra_compile_args if a not in SIM_UNIX_FLAGS]
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(
                f"vplc: building {ext.name} failed ({exc}); it runs as pure Python",
                file=sys.stderr,
            )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})

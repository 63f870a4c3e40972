"""Build hook: compile the Cython standard blocks; install without them if that is impossible.

``pip install .`` / ``pip install -e .`` cythonize runtime/blocks/_cy/*.pyx (editable installs
put the compiled modules next to the sources). Without Cython or a working C compiler the
install still succeeds, with the pure-Python blocks only (runtime.blocks says so at start-up).
"""

from __future__ import annotations

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


def _extensions() -> list:
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        print("vplc: Cython not available, installing the pure-Python blocks only", file=sys.stderr)
        return []
    sources = sorted((HERE / "runtime" / "blocks" / "_cy").glob("*.pyx"))
    exts = [
        Extension(
            "runtime.blocks._cy." + src.stem,
            [str(src.relative_to(HERE))],
            define_macros=MACROS,
        )
        for src in sources
    ]
    try:
        return list(cythonize(exts, compiler_directives=DIRECTIVES, quiet=True))
    except Exception as exc:  # a Cython error must not make the package uninstallable
        print(f"vplc: cythonize failed ({exc}); pure-Python blocks only", file=sys.stderr)
        return []


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
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(
                f"vplc: building {ext.name} failed ({exc}); pure-Python blocks only",
                file=sys.stderr,
            )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})

"""The generator of the compiled blocks: what it makes of a block module, and what it refuses.

One test compiles a block that is not a standard one (a helper that escapes, an index only
known at run time, a nested inheritance) and drives it against its Python source, which is
how an app-level or a future block would be built.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import types
from pathlib import Path

import pytest

from runtime.blocks._cy._gen import (
    BLOCKS_DIR,
    GenerateError,
    block_modules,
    generate,
    source_hash,
    write_sources,
)
from runtime.core._fb import CycleContext, FunctionBlock

HEAD = '''
"""A test block module."""

from __future__ import annotations

from typing import Final

from runtime.core._fb import CycleContext, FunctionBlock

_N: Final = 4
'''

SHIFT = (
    HEAD
    + '''
class _Base(FunctionBlock):
    """A base with an input of its own."""

    INPUTS = {"EN": True}
    EN: bool


class SHIFT(_Base):
    """A shift register of _N values; OUT is the item at POS (a run-time index)."""

    INPUTS = {"IN": 0.0, "POS": 0}
    OUTPUTS = {"OUT": 0.0, "SUM": 0.0}
    STATE = {"REG": [0.0] * 4, "NAME": "reg"}
    IN: float
    POS: int
    OUT: float
    SUM: float
    REG: list[float]
    NAME: str

    def execute(self, ctx: CycleContext) -> None:
        if not self.EN:
            return
        k: int
        for k in range(3, 0, -1):
            self.REG[k] = self.REG[k - 1]
        self.REG[0] = self.IN
        self._sum(0)
        self.OUT = self.REG[self.POS]

    def _sum(self, first: int) -> None:
        total: float = 0.0
        k: int
        for k in range(_N):
            total += self.REG[k]
        self.SUM = total + self.REG[first]
'''
)


def write(tmp_path: Path, text: str, name: str = "blk") -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


def test_every_standard_module_generates_with_its_source_hash(tmp_path):
    written = write_sources(tmp_path)
    assert set(written) == {f"runtime.blocks._cy.{m}" for m in block_modules()}
    for name, pyx in written.items():
        text = pyx.read_text()
        module = name.rsplit(".", 1)[1]
        assert f'SOURCE_HASH = "{source_hash(BLOCKS_DIR / f"{module}.py")}"' in text
        assert "cpdef execute(self, ctx):" in text
        assert text == generate(BLOCKS_DIR / f"{module}.py")  # deterministic
    alarm = (tmp_path / "alarm.pyx").read_text()
    assert "cdef bint _arr_COND[5]" in alarm and "_index(" not in alarm  # every index proven
    assert "cdef void _limit(self, long long k, bint enabled" in alarm
    assert "cdef enum:\n    _HH = 0" in alarm
    assert "from runtime.blocks.alarm import (" in alarm and "    ALARM_KINDS," in alarm
    before = (tmp_path / "pid.pyx").stat().st_mtime_ns
    write_sources(tmp_path)
    assert (tmp_path / "pid.pyx").stat().st_mtime_ns == before  # unchanged: not rewritten


def test_what_a_block_class_becomes(tmp_path):
    text = generate(write(tmp_path, SHIFT), package="pkg")
    assert "cdef class _Base(Block):" in text and "cdef class SHIFT(_Base):" in text
    assert "from pkg.blk import (" in text and "    CycleContext," in text
    assert "cdef enum:\n    _N = 4" in text
    assert (
        "    cdef double _arr_REG[4]" in text and "    cdef public object NAME" in text
    )  # str: subclasses (StrEnum) too
    assert "        self.NAME = 'reg'" in text
    # inherited input first, then its own, in both call paths
    assert "    def call(self, ctx, *, EN=_UNSET, IN=_UNSET, POS=_UNSET):" in text
    assert "    _INPUT_NAMES = _Base._INPUT_NAMES | frozenset(['IN', 'POS'])" in text
    assert "self._arr_REG[_index(self.POS, 4)]" in text  # known only at run time: checked
    assert "self._arr_REG[_index(k, 4)] = self._arr_REG[_index(k - 1, 4)]" in text
    assert "self._arr_REG[0] = self.IN" in text
    assert "total += self._arr_REG[k]" in text  # a range(_N) loop variable: proven
    assert "self._arr_REG[first]" in text  # every call passes 0: proven
    assert "    @cython.locals(total='double', k='long long')\n    cdef void _sum(" in text


def test_a_helper_argument_is_checked_when_one_call_is_not_known(tmp_path):
    source = SHIFT.replace("self._sum(0)", "self._sum(0)\n        self._sum(self.POS)")
    text = generate(write(tmp_path, source), package="pkg")
    assert "self._arr_REG[_index(first, 4)]" in text
    source = SHIFT.replace("self._sum(0)", "self._sum(0)\n        f = self._sum\n        f(9)")
    text = generate(write(tmp_path, source), package="pkg")
    assert "self._arr_REG[_index(first, 4)]" in text  # the helper escapes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    NAME: str\n", ""), r"NAME: declare its type"),
        (("self._sum(0)", "self._sum(0)\n        regs = self.REG"), r"use self\.REG\[i\] only"),
        (("self.REG[0] = self.IN", "self.REG[0:1] = [self.IN]"), r"no slice"),
        (('INPUTS = {"IN": 0.0, "POS": 0}', "INPUTS = dict(IN=0.0, POS=0)"), r"dict literal"),
        (("self.REG[0] = self.IN", "self.REG[4] = self.IN"), r"REG\[4\] is out of range"),
    ],
)
def test_a_block_the_compiled_build_cannot_carry_is_refused_with_file_and_reason(
    tmp_path, change, message
):
    path = write(tmp_path, SHIFT.replace(*change))
    with pytest.raises(GenerateError, match=message) as err:
        generate(path)
    assert str(path) in str(err.value)


def test_modules_without_blocks_are_not_compiled(tmp_path):
    write(tmp_path, HEAD, "consts")
    write(tmp_path, SHIFT, "shift")
    write(tmp_path, SHIFT, "_private")
    assert block_modules(tmp_path) == ["shift"]


def test_a_generated_block_compiles_and_matches_its_python_source(tmp_path, monkeypatch):
    from runtime.core._pyx import build_app_extensions

    monkeypatch.delenv("VPLC_PYX_CACHE", raising=False)
    package = "_vplc_test_gen_pkg"
    app = tmp_path / "app"
    app.mkdir()
    write(app, SHIFT)
    (app / "blk_cy.pyx").write_text(generate(app / "blk.py", package=package))
    dirs = build_app_extensions(app)
    pkg = types.ModuleType(package)
    pkg.__path__ = [str(app), *dirs]
    sys.modules[package] = pkg
    try:
        py = importlib.import_module(f"{package}.blk").SHIFT
        cy = importlib.import_module(f"{package}.blk_cy").SHIFT
        assert isinstance(cy(), FunctionBlock) and cy._VARS == py._VARS
        a, b, ctx = py(POS=1), cy(POS=1), CycleContext()
        for i, (value, pos) in enumerate([(1.5, 1), (2.0, 2), (-3.25, -1), (4.0, 0), (5.0, 3)]):
            ctx.advance(i * 1_000_000)
            a(ctx, IN=value, POS=pos)
            b.call(ctx, IN=value, POS=pos)
            assert a.snapshot() == b.snapshot()
        assert b.REG == [5.0, 4.0, -3.25, 2.0] and b.OUT == 2.0 and b.NAME == "reg"
        for blk in (a, b):  # an index out of range: IndexError in both, the same effects before
            with pytest.raises(IndexError):
                blk(ctx, IN=6.0, POS=4)
        assert b.REG == a.REG and b.OUT == a.OUT == 2.0
        b.REG = [1, 2, 3, 4]
        assert b.REG == [1.0, 2.0, 3.0, 4.0]
        with pytest.raises(ValueError, match=r"SHIFT\.REG needs 4 values"):
            b.REG = [1.0]
    finally:
        for name in (f"{package}.blk", f"{package}.blk_cy", package):
            sys.modules.pop(name, None)

"""The Cython blocks as the runtime sees them: FunctionBlocks, registration, selection, fallback.

Also an app's own .pyx blocks on the compiled base.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import runtime.blocks as blocks
import runtime.blocks.pure as pure
from runtime.blocks._cy import load, python_blocks
from runtime.blocks._cy._gen import block_modules
from runtime.core._fb import CycleContext, FunctionBlock
from runtime.core._instances import InstanceTree

try:
    CY = load()
except ImportError as exc:  # pragma: no cover - only without a compiler
    pytest.skip(f"Cython blocks not built: {exc}", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[3]


def test_every_block_is_registered_in_both_builds_and_exported():
    """A block missing from the compiled build, the Python build or the package fails here."""
    py = python_blocks()
    assert set(CY) == set(py)
    assert set(vars(pure)) >= set(py) and set(pure.__all__) == set(py)
    for name, klass in py.items():
        exported = CY[name] if blocks.IMPLEMENTATION == "cython" else klass
        assert getattr(blocks, name) is exported, name
        assert name in blocks.__all__, name
        assert CY[name].__name__ == klass.__name__ == name
        assert CY[name].__module__ == klass.__module__.replace(".blocks.", ".blocks._cy."), name
    # setup.py compiles the modules _gen finds; the loader expects those the import finds
    assert {k.__module__.rsplit(".", 1)[1] for k in py.values()} == set(block_modules())
    # no compiled module is left over from a block module that no longer exists
    built = {p.name.split(".")[0] for p in (ROOT / "runtime/blocks/_cy").glob("*.so")}
    assert built - {"_base"} <= set(block_modules()), built


def test_a_build_older_than_its_source_is_refused(monkeypatch):
    """An edited block module that was not rebuilt must not run its old compiled logic."""
    import runtime.blocks._cy._gen as gen

    real = gen.source_hash
    monkeypatch.setattr(gen, "source_hash", lambda p: real(p) if p.stem != "pid" else "edited")
    with pytest.raises(ImportError, match=r"_cy\.pid was built from another pid\.py"):
        load()


def test_cython_blocks_are_function_blocks_but_not_python_subclasses():
    for name, klass in CY.items():
        blk = klass()
        assert isinstance(blk, FunctionBlock), name
        assert issubclass(klass, FunctionBlock), name
        assert not isinstance(blk, getattr(blocks.pure, name)), name
    assert not isinstance(1.0, FunctionBlock)
    assert not issubclass(float, FunctionBlock)


def test_the_instance_tree_sees_cython_blocks():
    class Owner:  # what the tree reads of a program: VARS and the instance's attributes
        VARS: dict[str, object] = {}

    owner = Owner()
    owner.timers = [CY["TON"](PT=1.0), CY["TON"](PT=2.0)]  # type: ignore[attr-defined]
    owner.alarm = CY["ALARM"](H_EN=True)  # type: ignore[attr-defined]
    tree = InstanceTree({"p": owner})  # type: ignore[dict-item]
    assert list(tree.blocks()) == ["p.timers[0]", "p.timers[1]", "p.alarm"]
    assert [p for p, _ in tree.of_type(CY["ALARM"])] == ["p.alarm"]
    leaves = tree.leaves()
    for i, pt in enumerate((1.0, 2.0)):
        expected = pure.TON(PT=pt).snapshot()
        got = {
            path.rsplit(".", 1)[1]: getattr(owner_, attr)
            for path, (owner_, attr) in leaves.items()
            if path.startswith(f"p.timers[{i}].")
        }
        assert got == expected


def test_selection_follows_the_build_and_the_environment():
    assert blocks.IMPLEMENTATION == ("python" if os.environ.get("VPLC_BLOCKS") else "cython")
    code = (
        "import runtime.blocks as b; print(b.IMPLEMENTATION, b.TON.__module__, b.PHASE.__module__)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VPLC_BLOCKS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["cython", "runtime.blocks._cy.timers", "runtime.blocks._cy.phase"]
    env["VPLC_BLOCKS"] = "python"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["python", "runtime.blocks.timers", "runtime.blocks.phase"]


def test_missing_extensions_fall_back_and_warn_once():
    code = (
        "import sys; sys.modules['runtime.blocks._cy.timers'] = None\n"
        "from runtime.core._logging import configure_logging\n"
        "configure_logging('json')\n"
        "import runtime.blocks as b\n"
        "b.log_implementation(); b.log_implementation()\n"
        "print(b.IMPLEMENTATION, b.TON.__module__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VPLC_BLOCKS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["python", "runtime.blocks.timers"]
    warnings = [json.loads(line) for line in out.stderr.splitlines()]
    assert [w["event"] for w in warnings] == ["pure-Python function blocks in use"]
    assert "not built" in warnings[0]["reason"]


def test_deepcopy_and_repr_match_python():
    ctx = CycleContext()
    ctx.advance(0)
    for name, klass in CY.items():
        blk = klass()
        blk(ctx)
        clone = copy.deepcopy(blk)
        assert clone.snapshot() == blk.snapshot(), name
        py = getattr(blocks.pure, name)()
        py(ctx)
        assert repr(blk) == repr(py), name


def test_alarm_state_lists_are_copies_and_checked():
    alarm = CY["ALARM"]()
    alarm.COND = [True, False, False, False, True]
    assert alarm.COND == [True, False, False, False, True]
    alarm.COND[0] = False  # a copy: as documented, no effect
    assert alarm.COND[0] is True
    with pytest.raises(ValueError, match="5 values"):
        alarm.SINCE_NS = [0, 0]
    with pytest.raises(TypeError):
        alarm.SINCE_NS = [0, 0, 0, 0, "x"]
    assert alarm.SINCE_NS == [0, 0, 0, 0, 0]  # a refused assignment changes nothing
    with pytest.raises(KeyError, match="NOPE"):
        alarm.restore({"NOPE": 1})


def test_fast_call_path_equals_the_keyword_call():
    ctx = CycleContext()
    a, b = CY["TON"](PT=0.5), CY["TON"](PT=0.5)
    for ms, value in [(0, True), (200, True), (600, True), (700, False)]:
        ctx.advance(ms * 1_000_000)
        a(ctx, IN=value)
        b.call(ctx, IN=value)
        assert a.snapshot() == b.snapshot()
    with pytest.raises(TypeError, match="PTT"):
        a(ctx, PTT=1.0)


PYX = """
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
"""


def test_app_pyx_is_built_once_and_imports_as_an_app_module(tmp_path, monkeypatch):
    from runtime.core._pyx import PyxBuildError, build_app_extensions

    monkeypatch.delenv("VPLC_PYX_CACHE", raising=False)
    app = tmp_path / "app"
    app.mkdir()
    assert build_app_extensions(app) == []
    (app / "fastblocks.pyx").write_text(PYX)
    dirs = build_app_extensions(app)
    assert len(dirs) == 1 and Path(dirs[0]).parent == app / ".vplc-build"
    assert build_app_extensions(app) == dirs  # cached: same content, same place, no rebuild
    package = types.ModuleType("_vplc_test_pyx_app")
    package.__path__ = [str(app), *dirs]
    sys.modules[package.__name__] = package
    try:
        mod = importlib.import_module(f"{package.__name__}.fastblocks")
        blk = mod.DEADBAND(BAND=2.0)
        blk(CycleContext(), IN=5.0)
        assert isinstance(blk, FunctionBlock)
        assert blk.snapshot() == {"IN": 5.0, "BAND": 2.0, "OUT": 5.0}
    finally:
        sys.modules.pop(f"{package.__name__}.fastblocks", None)
        sys.modules.pop(package.__name__, None)
    (app / "fastblocks.pyx").write_text(PYX.replace("cpdef execute(self, ctx):", "cpdef oops("))
    with pytest.raises(PyxBuildError, match=r"fastblocks\.pyx"):
        build_app_extensions(app)

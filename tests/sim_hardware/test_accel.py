"""Compiled hot sim modules: bit-identical to their Python source, selected safely at import."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from hal import Direction
from sim_hardware import Bioreactor
from sim_hardware._accel import HOT_MODULES
from sim_hardware.plants._bioreactor_model import SENSORS
from sim_hardware.plants.skid import BioreactorSkid

ROOT = Path(__file__).resolve().parents[2]
VPLC = str(Path(sys.executable).with_name("vplc"))
SOURCES = [ROOT.joinpath(*m.split(".")).with_suffix(".py") for m in HOT_MODULES]


def _compiled(src: Path) -> Path | None:
    stem = src.with_suffix("").name
    return next((p for s in EXTENSION_SUFFIXES for p in src.parent.glob(stem + s)), None)


BUILT = all(_compiled(src) for src in SOURCES)
needs_build = pytest.mark.skipif(
    not BUILT, reason="hot sim modules not compiled (pip install -e . with Cython and gcc)"
)


def _env(*, python: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VPLC_SIM", None)
    if python:
        env["VPLC_SIM"] = "python"
    return env


def _run(code: str, *, python: bool = False, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = _env(python=python)
    if cwd != ROOT:
        env["PYTHONPATH"] = str(cwd)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )


def trajectory(seed: int, steps: int) -> list[str]:
    """Snapshots and true readings along a random run: commands (some NaN or out of range),
    utility failures, stuck valves, failed drives, varying dt and a restore half-way."""
    rnd = random.Random(seed)
    out = []
    for cls in (Bioreactor, BioreactorSkid):
        plant = cls(initial={"volume": 35.0 + seed, "biomass": 0.8, "ph": 7.1, "bicarbonate": 20.0})
        vessel = list(Bioreactor(initial={}).actuators())
        every = list(plant.actuators())
        sensors = [s.name for s in plant.signals if s.direction is Direction.IN]
        read_vessel = plant.values_reader(list(SENSORS))  # restored below: must follow
        for i in range(steps):
            if rnd.random() < 0.3:
                name = rnd.choice(vessel if rnd.random() < 0.8 else every)
                value = rnd.uniform(-20.0, 330.0) if rnd.random() > 0.03 else float("nan")
                plant.write(name, value)
            if rnd.random() < 0.01:
                utility = rnd.choice(plant.utilities)
                plant.set_utility(utility, not plant.utility_ok[utility])
            if rnd.random() < 0.006:
                part = plant.actuator(rnd.choice(vessel))
                if hasattr(part, "stuck"):
                    part.stuck = not part.stuck
                else:
                    part.failed = not part.failed
            if i == steps // 2:
                plant.restore(json.loads(json.dumps(plant.snapshot())))  # rebuilds the model
            plant.step(rnd.choice((0.05, 0.5, 1.0, 2.0)))
            if i % 20 == 0:
                out.append(json.dumps(plant.snapshot(), sort_keys=True))  # repr: exact floats
                out.append(json.dumps([plant.read(s) for s in sensors]))
                out.append(json.dumps(read_vessel()))  # the driver's one call for them all
    return out


def _trajectory_in_child(*, python: bool) -> tuple[str, list[str]]:
    code = (
        "import json, sim_hardware._accel as a\n"
        "from tests.sim_hardware.test_accel import trajectory\n"
        "print(a.implementation())\n"
        "for seed in (1, 2):\n"
        "    print('\\n'.join(trajectory(seed, 4000)))\n"
    )
    impl, *lines = _run(code, python=python).stdout.splitlines()
    return impl, lines


@needs_build
def test_compiled_model_is_bit_identical_to_python_source():
    impl_c, compiled = _trajectory_in_child(python=False)
    impl_p, source = _trajectory_in_child(python=True)
    assert (impl_c, impl_p) == ("cython", "python")
    assert len(compiled) == len(source) > 1000
    for i, (c, p) in enumerate(zip(compiled, source, strict=True)):
        if c != p:
            pairs = enumerate(zip(c, p, strict=False))
            at = next((k for k, (x, y) in pairs if x != y), min(len(c), len(p)))
            where = slice(max(at - 200, 0), at + 60)
            pytest.fail(f"line {i} differs:\ncython …{c[where]}\npython …{p[where]}")


@needs_build
@pytest.mark.parametrize(
    ("app", "seconds"),
    [
        ("plc_apps/bioreactor", "600"),
        # ten skids (2,610 points): the skid's one-call readings, inline latches, on/off valves
        ("plc_apps/plant10", "300"),
    ],
)
def test_virtual_run_trace_is_byte_identical_to_python_source(
    tmp_path: Path, app: str, seconds: str
):
    traces = []
    for python in (False, True):
        trace = tmp_path / f"trace-{python}.csv"
        cmd = [VPLC, "run", app, "--virtual", "--duration", seconds]
        subprocess.run(
            [*cmd, "--trace", str(trace)],
            cwd=ROOT,
            env=_env(python=python),
            capture_output=True,
            check=True,
        )
        traces.append(trace.read_bytes())
    assert traces[0].count(b"\n") > 1000
    assert hashlib.md5(traces[0]).hexdigest() == hashlib.md5(traces[1]).hexdigest()


@needs_build
def test_compiled_build_is_active_here():
    code = "import sim_hardware._accel as a; print(a.implementation()); print(a.fallback_reason())"
    impl, *reason = _run(code).stdout.splitlines()
    assert impl == "cython", f"pure Python in use: {reason}"


def test_every_hot_module_has_source_and_pxd():
    for src in SOURCES:
        assert src.exists() and src.with_suffix(".pxd").exists(), src


def _copy_tree(tmp_path: Path) -> Path:
    """sim_hardware with its builds, mtimes kept: the real tree is never touched."""
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "sim_hardware", tmp_path / "sim_hardware", ignore=skip)
    return tmp_path


def _newer_than_build(path: Path, seconds: float, build_of: Path | None = None) -> None:
    """Date ``path`` ``seconds`` after the build of ``build_of`` (default: its own module).

    Modules are built one after the other, seconds apart on a busy machine: a file dated after
    one module's build may still be older than the next module's.
    """
    built = _compiled((build_of or path).with_suffix(".py"))
    assert built is not None
    t = built.stat().st_mtime + seconds
    os.utime(path, (t, t))


_WHICH = (
    "import sim_hardware, sim_hardware._accel as a\n"
    "import sim_hardware.components as c, sim_hardware.plants._bioreactor_model as m\n"
    "print(a.implementation(), sim_hardware.__file__, c.__file__, m.__file__)\n"
    "print(a.fallback_reason())\n"
)


def _which(tree: Path, *, python: bool = False) -> tuple[list[str], str, str]:
    out = _run(_WHICH, cwd=tree, python=python)
    first, reason = out.stdout.splitlines()
    impl, *files = first.split()
    assert all(f.startswith(str(tree)) for f in files)  # the copy, not the real tree
    return [impl, *(Path(f).suffix for f in files[1:])], reason, out.stderr


@needs_build
def test_fresh_copy_runs_compiled(tmp_path: Path):
    which, reason, _ = _which(_copy_tree(tmp_path))
    assert which == ["cython", ".so", ".so"] and reason == ""


@needs_build
def test_edited_source_newer_than_build_runs_from_source_and_warns(tmp_path: Path):
    tree = _copy_tree(tmp_path)
    _newer_than_build(tree / "sim_hardware" / "components.py", 10.0)
    which, reason, stderr = _which(tree)
    assert which == ["python", ".py", ".py"]  # all or none: the model cimports the valves
    assert "sim_hardware.components stale" in reason
    assert "sim_hardware.components" in stderr and "build_ext --inplace" in stderr


@needs_build
def test_edited_pxd_makes_its_users_stale_too(tmp_path: Path):
    tree = _copy_tree(tmp_path)
    model = tree / "sim_hardware" / "plants" / "_bioreactor_model.py"
    _newer_than_build(tree / "sim_hardware" / "components.pxd", 10.0, build_of=model)
    which, reason, _ = _which(tree)
    assert which == ["python", ".py", ".py"]
    assert "_bioreactor_model stale (components.pxd" in reason


@needs_build
def test_install_order_within_the_slack_is_not_stale(tmp_path: Path):
    tree = _copy_tree(tmp_path)
    _newer_than_build(tree / "sim_hardware" / "components.py", 1.0)  # as a wheel unpacks
    which, _, stderr = _which(tree)
    assert which == ["cython", ".so", ".so"] and stderr == ""


@needs_build
def test_environment_asks_for_the_source(tmp_path: Path):
    which, reason, stderr = _which(_copy_tree(tmp_path), python=True)
    assert which == ["python", ".py", ".py"] and reason == "VPLC_SIM=python" and stderr == ""


def test_plant_state_lives_on_the_model_and_reads_as_before():
    b = Bioreactor()
    b.T = 31.5
    assert b._model.T == 31.5 and b.read("temperature") == 31.5
    b.restore(b.snapshot())
    assert b.T == 31.5 and b.heating is b._model.heating

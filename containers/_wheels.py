"""The runtime as wheels: ``pip wheel`` of the vplc sources, cached by their content hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import runtime
from containers._base import Progress
from containers._errors import BuildError

__all__ = ["build_wheels", "source_root", "wheel_cache_dir"]

PACKAGES = ("hal", "runtime", "sim_hardware", "plc_apps", "containers")
PROJECT_FILES = ("pyproject.toml", "setup.py", "README.md")


def source_root() -> Path:
    """The vplc source tree the runtime wheel is built from."""
    root = Path(runtime.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise BuildError(
            f"no vplc source tree at {root} (pyproject.toml missing): image builds need the "
            f"runtime's sources (an editable install, `pip install -e .`)"
        )
    return root


def wheel_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vplc" / "wheelhouse"


def _copy_sources(root: Path, src: Path) -> str:
    """Copy what the wheel is built from; return the sha256 of that content (the cache key)."""
    digest = hashlib.sha256(sys.version.encode())
    junk = shutil.ignore_patterns("__pycache__", "*.so", "build", "*.egg-info")
    src.mkdir(parents=True)
    for name in PROJECT_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(root / pkg, src / pkg, ignore=junk)
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_wheels(progress: Progress = print) -> Path:
    """``pip wheel`` the runtime and its dependencies with the host's pip (which may reach PyPI).

    The sources are copied first so the build neither sees nor leaves build artefacts
    (``build/``, compiled ``*.so``) in the working tree other people edit. The wheelhouse is
    cached by the sources' hash: building the runtime (Cython included) takes a minute or
    more, and every app image of one runtime version uses the same wheels.
    """
    root = source_root()
    with tempfile.TemporaryDirectory(prefix="vplc-src-") as tmp:
        src = Path(tmp) / "vplc"
        key = _copy_sources(root, src)
        cached = wheel_cache_dir() / key[:16]
        if not (cached / ".complete").exists():
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                str(src),
                "-w",
                str(cached),
            ]
            progress("wheels: " + " ".join(cmd[2:]))
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
                raise BuildError(f"pip wheel failed (exit {proc.returncode}):\n{tail}")
            (cached / ".complete").touch()
        else:
            progress(f"wheels: reusing {cached} (same runtime sources)")
    for wheel in sorted(cached.glob("*.whl")):
        progress(f"  {wheel.name}")
    _prune(cached.parent, keep=3)
    return cached


def _prune(cache: Path, *, keep: int) -> None:
    """Drop all but the newest ``keep`` wheelhouses (each is ~50 MB)."""
    dirs = sorted(cache.iterdir(), key=lambda d: d.stat().st_mtime, reverse=True)
    for old in dirs[keep:]:
        shutil.rmtree(old, ignore_errors=True)

"""``vplc image build``: an app image from host-built wheels on the local base, no registry."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import docker
import docker.errors

import runtime
from containers._base import BASE_IMAGE, Progress, check_python_match, ensure_base_image
from containers._dockerfile import render
from containers._errors import BuildError, InvalidInputError
from runtime.manifest import AppManifest, ManifestError, load_manifest

__all__ = ["LABEL", "BuiltImage", "build_image", "build_wheels", "image_tag", "output_claims"]

# Label keys on images (and copied onto containers) that the deployment manager reads.
LABEL = "org.vplc."
PACKAGES = ("hal", "runtime", "sim_hardware", "plc_apps", "containers")
PROJECT_FILES = ("pyproject.toml", "setup.py", "README.md")


@dataclass
class BuiltImage:
    """What one build produced, with timings for the benchmark."""

    tag: str
    id: str
    labels: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)


def image_tag(manifest: AppManifest) -> str:
    # Repository names must be lower case; app names are identifiers, so this is lossless enough.
    return f"vplc-{manifest.name.lower().replace('_', '-')}:{manifest.version}"


def output_claims(manifest: AppManifest) -> list[str]:
    """The physical outputs an app drives: ``driver-type/channel`` of every output point."""
    claims = {
        f"{manifest.drivers[p.driver].type}/{p.channel}"
        for p in manifest.points
        if p.direction.value == "out"
    }
    return sorted(claims)


def runtime_version() -> str:
    try:
        return version("vplc")
    except PackageNotFoundError:
        return "unknown"


def build_image(
    client: docker.DockerClient,
    app_dir: Path,
    *,
    base_image: str = BASE_IMAGE,
    tag: str | None = None,
    no_cache: bool = False,
    wheelhouse: Path | None = None,
    progress: Progress = print,
) -> BuiltImage:
    """Build ``vplc-<app>:<version>`` holding the runtime (as wheels) and the app folder.

    ``wheelhouse`` reuses wheels from ``build_wheels`` (several app images of one runtime).
    """
    try:
        manifest = load_manifest(app_dir)
    except ManifestError as exc:
        raise InvalidInputError(str(exc)) from None
    tag = tag or image_tag(manifest)
    t0 = time.perf_counter()
    ensure_base_image(client, name=base_image, progress=progress)
    major, minor = check_python_match(client, base_image)
    progress(f"python {major}.{minor} on the host and in {base_image}: wheels match")
    seconds = {"base_s": round(time.perf_counter() - t0, 2)}
    labels = {
        LABEL + "app": manifest.name,
        LABEL + "version": manifest.version,
        LABEL + "manifest-sha256": hashlib.sha256((app_dir / "app.yaml").read_bytes()).hexdigest(),
        LABEL + "runtime-version": runtime_version(),
        LABEL + "build-time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        LABEL + "base-image": base_image,
        LABEL + "outputs": json.dumps(output_claims(manifest)),
        LABEL + "fastest-period-ms": str(min(t.period_ms for t in manifest.tasks)),
    }
    with tempfile.TemporaryDirectory(prefix="vplc-build-") as tmp:
        ctx = Path(tmp)
        t1 = time.perf_counter()
        wheels = wheelhouse or build_wheels(progress)
        shutil.copytree(wheels, ctx / "wheels", ignore=shutil.ignore_patterns(".complete"))
        seconds["wheels_s"] = round(time.perf_counter() - t1, 2)
        shutil.copytree(app_dir, ctx / "app", ignore=shutil.ignore_patterns("__pycache__"))
        (ctx / "Dockerfile").write_text(render(base=base_image, requirement="vplc"))
        t2 = time.perf_counter()
        image_id = _docker_build(
            client, ctx, tag=tag, labels=labels, no_cache=no_cache, progress=progress
        )
        seconds["docker_build_s"] = round(time.perf_counter() - t2, 2)
    seconds["total_s"] = round(time.perf_counter() - t0, 2)
    progress(f"built {tag} ({image_id[:19]}) in {seconds['total_s']} s")
    return BuiltImage(tag=tag, id=image_id, labels=labels, seconds=seconds)


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


def _docker_build(
    client: docker.DockerClient,
    ctx: Path,
    *,
    tag: str,
    labels: dict[str, str],
    no_cache: bool,
    progress: Progress,
) -> str:
    """Stream the build log; return the image id or raise with the log's tail."""
    tail: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(ctx),
            tag=tag,
            labels=labels,
            rm=True,
            forcerm=True,
            nocache=no_cache,
            pull=False,
            decode=True,
        ):
            if "error" in chunk:
                raise BuildError(
                    f"docker build of {tag} failed: {chunk['error'].strip()}\n" + "\n".join(tail)
                )
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    tail = [*tail[-14:], line]
                    progress("  " + line)
    except docker.errors.APIError as exc:
        raise BuildError(f"docker build of {tag} failed: {exc.explanation or exc}") from None
    return str(client.images.get(tag).id)

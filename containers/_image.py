"""``vplc image build``: an app image from host-built wheels on the local base, no registry."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import docker

from containers._base import BASE_IMAGE, Progress, check_python_match, ensure_base_image
from containers._build import docker_build
from containers._digest import listing
from containers._dockerfile import render
from containers._errors import InvalidInputError
from containers._wheels import build_wheels
from runtime import AppManifest, ManifestError, load_manifest

__all__ = [
    "LABEL",
    "BuiltImage",
    "build_image",
    "build_wheels",
    "image_tag",
    "output_claims",
    "task_periods_ms",
]

# Label keys on images (and copied onto containers) that the deployment manager reads.
LABEL = "org.vplc."


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


def task_periods_ms(labels: dict[str, str]) -> dict[str, float]:
    """The image's task periods (``org.vplc.task-periods-ms``); older images: the fastest only."""
    try:
        periods = json.loads(labels[LABEL + "task-periods-ms"])
        return {str(k): float(v) for k, v in periods.items()}
    except (KeyError, ValueError, TypeError, AttributeError):
        fastest = labels.get(LABEL + "fastest-period-ms")
        return {"fastest": float(fastest)} if fastest else {}


def runtime_version() -> str:
    try:
        return version("vplc")
    except PackageNotFoundError:
        return "unknown"


def _labels(manifest: AppManifest, app_dir: Path, app_listing: bytes, base: str) -> dict[str, str]:
    periods = {t.name: t.period_ms for t in manifest.tasks}
    return {
        LABEL + "app": manifest.name,
        LABEL + "version": manifest.version,
        # Every file of the app folder (manifest, logic, scenarios): containers/_digest.py.
        LABEL + "app-sha256": hashlib.sha256(app_listing).hexdigest(),
        LABEL + "manifest-sha256": hashlib.sha256((app_dir / "app.yaml").read_bytes()).hexdigest(),
        LABEL + "runtime-version": runtime_version(),
        LABEL + "build-time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        LABEL + "base-image": base,
        LABEL + "outputs": json.dumps(output_claims(manifest)),
        LABEL + "fastest-period-ms": str(min(periods.values())),
        LABEL + "slowest-period-ms": str(max(periods.values())),
        LABEL + "task-periods-ms": json.dumps(periods, sort_keys=True),
    }


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
    The build has no network, checks that the image holds exactly the app's files and runs
    ``vplc validate`` inside the image (an app whose logic does not import: InvalidInputError).
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
    with tempfile.TemporaryDirectory(prefix="vplc-build-") as tmp:
        ctx = Path(tmp)
        t1 = time.perf_counter()
        wheels = wheelhouse or build_wheels(progress)
        shutil.copytree(wheels, ctx / "wheels", ignore=shutil.ignore_patterns(".complete"))
        seconds["wheels_s"] = round(time.perf_counter() - t1, 2)
        shutil.copytree(app_dir, ctx / "app", ignore=shutil.ignore_patterns("__pycache__"))
        # Hashed from the copy: what is hashed is byte for byte what the image receives.
        app_listing = listing(ctx / "app")
        (ctx / "app.sha256").write_bytes(app_listing)
        labels = _labels(manifest, app_dir, app_listing, base_image)
        (ctx / "Dockerfile").write_text(render(base=base_image, requirement="vplc"))
        t2 = time.perf_counter()
        image_id = docker_build(
            client, ctx, tag=tag, labels=labels, no_cache=no_cache, progress=progress
        )
        seconds["docker_build_s"] = round(time.perf_counter() - t2, 2)
    seconds["total_s"] = round(time.perf_counter() - t0, 2)
    progress(f"built {tag} ({image_id[:19]}) in {seconds['total_s']} s")
    return BuiltImage(tag=tag, id=image_id, labels=labels, seconds=seconds)

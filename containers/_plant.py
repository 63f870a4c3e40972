"""The plant image: ``vplc sim serve`` in its own container, from the app images' base and wheels.

A hardware-in-the-loop bench (and the blue-green tests) runs the simulated plant the way a real
device sits on the network: in its own container, reached over MQTT, so the app containers
share nothing with it but the broker.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import docker

from containers._base import BASE_IMAGE, Progress, check_python_match, ensure_base_image
from containers._build import docker_build
from containers._dockerfile import render_plant
from containers._image import LABEL, BuiltImage, runtime_version
from containers._wheels import build_wheels

__all__ = ["build_plant_image", "plant_tag"]


def plant_tag() -> str:
    return f"vplc-sim:{runtime_version()}"


def build_plant_image(
    client: docker.DockerClient,
    *,
    base_image: str = BASE_IMAGE,
    tag: str | None = None,
    no_cache: bool = False,
    wheelhouse: Path | None = None,
    progress: Progress = print,
) -> BuiltImage:
    """Build ``vplc-sim:<runtime version>``; run it with ``sim serve`` arguments as command."""
    tag = tag or plant_tag()
    t0 = time.perf_counter()
    ensure_base_image(client, name=base_image, progress=progress)
    check_python_match(client, base_image)
    labels = {
        LABEL + "role": "plant",
        LABEL + "runtime-version": runtime_version(),
        LABEL + "build-time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        LABEL + "base-image": base_image,
    }
    with tempfile.TemporaryDirectory(prefix="vplc-build-plant-") as tmp:
        ctx = Path(tmp)
        wheels = wheelhouse or build_wheels(progress)
        shutil.copytree(wheels, ctx / "wheels", ignore=shutil.ignore_patterns(".complete"))
        (ctx / "Dockerfile").write_text(render_plant(base=base_image, requirement="vplc"))
        image_id = docker_build(
            client, ctx, tag=tag, labels=labels, no_cache=no_cache, progress=progress
        )
    seconds = {"total_s": round(time.perf_counter() - t0, 2)}
    progress(f"built {tag} ({image_id[:19]}) in {seconds['total_s']} s")
    return BuiltImage(tag=tag, id=image_id, labels=labels, seconds=seconds)

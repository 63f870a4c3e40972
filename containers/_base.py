"""The air-gapped base image: a debootstrapped Debian root filesystem imported into Docker."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from containers._errors import BuildError

__all__ = ["BASE_IMAGE", "DEBIAN_PYTHON", "ensure_base_image", "image_python_version"]

BASE_IMAGE = "vplc-base:bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = "python3,python3-venv,ca-certificates"
# Debian bookworm ships Python 3.11 (3.11.2): the host's wheels must be built for 3.11 too,
# because pydantic-core and our Cython blocks are CPython-ABI specific (cp311).
DEBIAN_PYTHON = (3, 11)

Progress = Callable[[str], None]


def ensure_base_image(
    client: docker.DockerClient,
    *,
    name: str = BASE_IMAGE,
    progress: Progress = print,
    rebuild: bool = False,
) -> str:
    """Return ``name``, bootstrapping and importing it only when the engine lacks it."""
    if not rebuild:
        try:
            client.images.get(name)
            progress(f"base image {name}: present, reused")
            return name
        except docker.errors.ImageNotFound:
            pass
    if name != BASE_IMAGE:
        raise BuildError(
            f"base image {name!r} does not exist in the Docker engine; only {BASE_IMAGE} "
            f"is bootstrapped automatically (or `docker import`/`docker load` it yourself)"
        )
    _bootstrap_and_import(client, name, progress)
    return name


def _bootstrap_and_import(client: docker.DockerClient, name: str, progress: Progress) -> None:
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed: apt-get install -y debootstrap")
    with tempfile.TemporaryDirectory(prefix="vplc-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={PACKAGES}",
            SUITE,
            str(root),
            MIRROR,
        ]
        progress(f"base image {name}: {' '.join(cmd)} (a few minutes, once)")
        _stream(cmd, progress)
        # apt lists and the package cache are dead weight in a read-only runtime image.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(root / junk, ignore_errors=True)
        tar_path = Path(tmp) / "rootfs.tar"
        progress(f"base image {name}: packing {tar_path.name}")
        with tarfile.open(tar_path, "w") as tar:
            for child in sorted(root.iterdir()):
                tar.add(child, arcname=child.name)
        progress(f"base image {name}: docker import")
        with tar_path.open("rb") as fh:
            repo, _, tag = name.partition(":")
            client.images.client.api.import_image_from_data(fh.read(), repository=repo, tag=tag)
    found = image_python_version(client, name)
    progress(f"base image {name}: ready (python {found[0]}.{found[1]})")


def _stream(cmd: list[str], progress: Progress) -> None:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = [*tail[-19:], line.rstrip()]
        progress("  " + line.rstrip())
    if proc.wait() != 0:
        raise BuildError(f"{cmd[0]} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def image_python_version(client: docker.DockerClient, image: str) -> tuple[int, int]:
    """Major/minor of ``python3`` inside ``image`` (a throwaway container, no network)."""
    try:
        out = client.containers.run(
            image,
            ["python3", "-c", "import sys; print(*sys.version_info[:2])"],
            remove=True,
            network_mode="none",
        )
    except docker.errors.ContainerError as exc:
        raise BuildError(f"{image}: has no working python3 ({exc})") from None
    major, minor = (int(x) for x in out.decode().split())
    return major, minor


def check_python_match(client: docker.DockerClient, image: str) -> tuple[int, int]:
    """Refuse a base whose python3 differs from the host's: the host-built wheels would not fit."""
    host = sys.version_info[:2]
    found = image_python_version(client, image)
    if found != host:
        raise BuildError(
            f"Python version mismatch: the host builds wheels with Python "
            f"{host[0]}.{host[1]} but {image} has Python {found[0]}.{found[1]}; "
            f"build on a host with Python {found[0]}.{found[1]} or pick a matching "
            f"--base-image"
        )
    return found

"""Image builds: labels, non-root user, health check, python version check, CLI progress."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from containers import _base
from containers._errors import BuildError

from .conftest import BIOREACTOR, PREFIX, ROOT


def test_image_labels_user_and_health(images: dict[str, str], client: Any) -> None:
    image = client.images.get(images["v1"])
    labels = image.labels
    assert labels["org.vplc.app"] == "bioreactor"
    assert labels["org.vplc.version"] == "1.0.0"
    assert labels["org.vplc.runtime-version"] == "0.1.0"
    assert labels["org.vplc.build-time"].endswith("Z")
    assert len(labels["org.vplc.manifest-sha256"]) == 64
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert "/var/lib/vplc" in config["Volumes"]
    assert config["Healthcheck"]["Test"][-4:-2] == [
        "containers.health",
        "/var/lib/vplc/heartbeat.json",
    ]
    assert config["Entrypoint"][:5] == ["/opt/vplc/bin/vplc", "--log-format", "json", "run", "/app"]


def test_manifest_hash_label_is_the_app_yaml_inside(images: dict[str, str], client: Any) -> None:
    image = client.images.get(images["v2"])
    c = client.containers.run(
        images["v2"],
        ["sha256sum", "/app/app.yaml"],
        entrypoint=[],
        detach=True,
        network_mode="none",
    )
    try:
        c.wait(timeout=30)
        out = c.logs()
    finally:
        c.remove(v=True)  # v: the image declares a VOLUME; do not leave an anonymous one
    assert out.decode().split()[0] == image.labels["org.vplc.manifest-sha256"]


def test_python_mismatch_is_refused(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    monkeypatch.setattr(_base, "image_python_version", lambda c, image: (3, 9))
    with pytest.raises(
        BuildError, match=r"host builds wheels with Python 3\.\d+ but x has Python 3\.9"
    ):
        _base.check_python_match(client, "x")


def test_unknown_base_image_is_refused(client: Any) -> None:
    with pytest.raises(BuildError, match="does not exist in the Docker engine"):
        _base.ensure_base_image(client, name="vplc-nobase:none", progress=lambda x: None)


def test_cli_build_streams_progress(images: dict[str, str], client: Any) -> None:
    tag = f"{PREFIX}-cli:1.0.0"
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "runtime.cli",
                "image",
                "build",
                str(BIOREACTOR),
                "--tag",
                tag,
                "--wheelhouse",
                images["wheelhouse"],
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert "base image vplc-base:bookworm: present, reused" in proc.stdout
        assert "Step 1/" in proc.stdout and f"Successfully tagged {tag}" in proc.stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_cli_build_of_a_non_app_is_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "image", "build", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2 and "not an app folder" in proc.stderr

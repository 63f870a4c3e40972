"""Image builds: labels, non-root user, health check, python version check, CLI progress."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from containers import _base
from containers._digest import app_digest, listing
from containers._errors import BuildError

from .conftest import BIOREACTOR, PREFIX, ROOT, app_copy


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
                "runtime.host.cli",
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
        [sys.executable, "-m", "runtime.host.cli", "image", "build", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2 and "not an app folder" in proc.stderr


def test_app_digest_covers_every_file(tmp_path: Path) -> None:
    app = shutil.copytree(BIOREACTOR, tmp_path / "app")
    (app / "__pycache__").mkdir(exist_ok=True)
    (app / "__pycache__" / "x.pyc").write_bytes(b"derived, not part of the app")
    first = app_digest(app)
    lines = listing(app).decode().splitlines()
    assert "app.yaml" in {line.split("  ", 1)[1] for line in lines}
    assert any(line.endswith("scenarios/do_probe_dropout.yaml") for line in lines), lines
    assert not any("__pycache__" in line for line in lines)
    for changed in ("loops.py", "scenarios/do_probe_dropout.yaml"):
        with (app / changed).open("a") as fh:
            fh.write("\n# changed\n")
        assert app_digest(app) != first, changed
        first = app_digest(app)
    (app / "notes.txt").write_text("a new file counts too")
    assert app_digest(app) != first


def test_image_proves_its_app(images: dict[str, str], client: Any) -> None:
    """The label is the digest of every file in /app, checkable with sha256sum in the image."""
    labels = client.images.get(images["v1"]).labels
    assert json.loads(labels["org.vplc.task-periods-ms"]) == {"control": 200.0, "sequence": 1000.0}
    assert labels["org.vplc.slowest-period-ms"] == "1000.0"
    script = (
        "cd /app && sha256sum --quiet --strict -c /opt/vplc/app.sha256 "
        "&& python -m containers._digest /app && sha256sum /opt/vplc/app.sha256"
    )
    c = client.containers.run(
        images["v1"], ["sh", "-c", script], entrypoint=[], detach=True, network_mode="none"
    )
    try:
        assert c.wait(timeout=60)["StatusCode"] == 0, c.logs()
        recomputed, listed = c.logs().decode().split()[:2]
    finally:
        c.remove(v=True)  # v: the image declares a VOLUME; do not leave an anonymous one
    assert recomputed == labels["org.vplc.app-sha256"] == listed
    assert len(labels["org.vplc.app-sha256"]) == 64


def test_build_steps_have_no_network(client: Any, tmp_path: Path) -> None:
    """A step that needs the network fails; the same step with a network succeeds (control)."""
    from containers._build import docker_build
    from tests.containers._net import bridge_gateway

    host = bridge_gateway()
    with socket.socket() as server:
        server.bind((host, 0))
        server.listen(8)
        port = server.getsockname()[1]
        (tmp_path / "Dockerfile").write_text(
            f'FROM {_base.BASE_IMAGE}\nRUN python3 -c "import socket; '
            f"socket.create_connection(('{host}', {port}), 5)\"\n"
        )
        tag = f"{PREFIX}-net:probe"
        try:
            with pytest.raises(
                BuildError, match=r"failed at step `RUN python3 .*network mode none"
            ):
                docker_build(
                    client, tmp_path, tag=tag, labels={}, no_cache=True, progress=lambda x: None
                )
            for chunk in client.api.build(
                path=str(tmp_path), tag=tag, nocache=True, rm=True, forcerm=True, decode=True
            ):
                assert "error" not in chunk, chunk
            assert client.images.get(tag).id
        finally:
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_build_refuses_an_app_whose_logic_fails_to_import(
    images: dict[str, str], tmp_path: Path
) -> None:
    app = app_copy(
        tmp_path / "bad", version="9.9.9", extra={"alarms.py": "import no_such_module_here\n"}
    )
    tag = f"{PREFIX}-bad:9.9.9"
    before = _dangling_runtime_layers()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "runtime.host.cli", "image", "build", str(app), "--tag", tag,
             "--wheelhouse", images["wheelhouse"]],
            capture_output=True, text=True, cwd=ROOT, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr + proc.stdout[-2000:]
        err = proc.stderr
        assert "`vplc validate` inside the image rejects the app" in err
        assert "no_such_module_here" in err and "programs.1.entry" in err
        assert "Traceback" not in err
        # The refused build's own layers are gone (the install stage stays as build cache).
        assert _dangling_runtime_layers() <= before
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def _dangling_runtime_layers() -> set[str]:
    out = subprocess.run(
        ["docker", "images", "-q", "--filter", "dangling=true"], capture_output=True, text=True
    ).stdout.split()
    stage = subprocess.run(
        ["docker", "images", "-q", "--filter", "dangling=true", "--filter",
         "label=org.vplc.stage=install"],
        capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return set(out) - set(stage)


def test_cli_builds_the_plant_image(images: dict[str, str], client: Any) -> None:
    tag = f"{PREFIX}-sim:cli"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "runtime.host.cli", "image", "build-plant", "--tag", tag,
             "--wheelhouse", images["wheelhouse"]],
            capture_output=True, text=True, cwd=ROOT, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr + proc.stdout[-2000:]
        built = json.loads(proc.stdout[proc.stdout.rindex("\n{") :])
        assert built["tag"] == tag and built["labels"]["org.vplc.role"] == "plant"
        config = client.images.get(tag).attrs["Config"]
        assert config["Entrypoint"] == [
            "/opt/vplc/bin/vplc", "--log-format", "json", "sim", "serve",
        ]  # fmt: skip
        assert config["User"] == "10001:10001"
        out = client.containers.run(tag, ["--help"], remove=True, network_mode="none")
        assert b"--prefix" in out and b"--host" in out
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)

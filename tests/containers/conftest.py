"""Fixtures against the real Docker engine: start dockerd if needed, build images once, clean up.

The engine is installed (apt-get install docker.io) and started (dockerd in the background)
only when missing; the base image vplc-base:bookworm is kept across sessions (bootstrapping it
takes minutes), everything else a test creates is removed by finalizers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIOREACTOR = ROOT / "plc_apps" / "bioreactor"
PREFIX = f"vplctest{uuid.uuid4().hex[:6]}"
LATE_FAULT_S = 6.0


def fault_after(seconds: float, what: str) -> str:
    """Logic appended to loops.py: imports and validates fine, raises once ctx.now >= seconds."""
    return f"""

_execute = Loops.execute


def _faulty(self, ctx):  # noqa: ANN001, ANN202
    if ctx.now >= {seconds!r}:
        raise RuntimeError({what!r})
    _execute(self, ctx)


Loops.execute = _faulty
"""


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _apt_install(*packages: str) -> None:
    if shutil.which("apt-get") is None:
        pytest.fail(f"{' '.join(packages)} missing and no apt-get to install it", pytrace=False)
    _run(["apt-get", "update"], timeout=600)
    proc = _run(["apt-get", "install", "-y", *packages], timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"apt-get install {' '.join(packages)} failed:\n{proc.stderr[-2000:]}")


def _engine_answers() -> bool:
    return shutil.which("docker") is not None and _run(["docker", "info"]).returncode == 0


def _clear_stale_pidfile(path: Path = Path("/var/run/docker.pid")) -> None:
    """A dockerd that was killed leaves its pid file, and a new one refuses to start."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
    except PermissionError:
        pass  # alive, someone else's


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """A running Docker engine (and debootstrap), installed and started when missing."""
    if shutil.which("dockerd") is None:
        _apt_install("docker.io")
    if shutil.which("debootstrap") is None:
        _apt_install("debootstrap")
    proc = None
    if not _engine_answers():
        _clear_stale_pidfile()
        log = Path(tempfile.mkdtemp(prefix="vplc-dockerd-")) / "dockerd.log"
        with log.open("w") as fh:
            # Its own session: the engine outlives this test run's process group.
            proc = subprocess.Popen(
                ["dockerd"], stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while not _engine_answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text()[-2000:]
                pytest.fail(
                    f"could not start dockerd (exit {proc.poll()}); see {log}:\n{tail}",
                    pytrace=False,
                )
            time.sleep(0.5)
    # A dockerd started here stays up: containers other sessions made may still use it.
    yield


@pytest.fixture(scope="session")
def client(docker_engine: None) -> Any:
    from containers._client import connect

    return connect()


def app_copy(
    dest: Path,
    *,
    version: str,
    edit: Callable[[dict[str, Any]], None] | None = None,
    extra: dict[str, str] | None = None,
    append: dict[str, str] | None = None,
) -> Path:
    """A copy of the bioreactor app with another version (and optional manifest/file edits)."""
    shutil.copytree(BIOREACTOR, dest, ignore=shutil.ignore_patterns("__pycache__", "scenarios"))
    manifest = yaml.safe_load((dest / "app.yaml").read_text())
    manifest["version"] = version
    if edit is not None:
        edit(manifest)
    (dest / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    for name, text in (extra or {}).items():
        (dest / name).write_text(text)
    for name, text in (append or {}).items():
        with (dest / name).open("a") as fh:
            fh.write(text)
    return dest


@pytest.fixture(scope="session")
def images(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Bioreactor images under a test-only tag: 1.0.0, 1.0.1 (new temp_sp), and two builds that
    pass `vplc validate` but fail when they run: "broken" raises in its first cycle, "late"
    after LATE_FAULT_S seconds of app time (after its first healthy check)."""
    from containers._image import build_image, build_wheels

    work = tmp_path_factory.mktemp("apps")

    def temp_sp(manifest: dict[str, Any]) -> None:
        for p in manifest["parameters"]:
            if p["name"] == "temp_sp":
                p["default"] = 36.5

    apps = {
        "v1": app_copy(work / "v1", version="1.0.0"),
        "v2": app_copy(work / "v2", version="1.0.1", edit=temp_sp),
        "broken": app_copy(
            work / "broken",
            version="1.0.2",
            append={"loops.py": fault_after(0.0, "deliberately broken in its first cycle")},
        ),
        "late": app_copy(
            work / "late",
            version="1.0.3",
            append={"loops.py": fault_after(LATE_FAULT_S, "deliberately late fault")},
        ),
    }
    tags: dict[str, str] = {}
    wheels = build_wheels(progress=lambda line: None)  # once: every image shares the runtime
    tags["wheelhouse"] = str(wheels)
    try:
        for key, folder in apps.items():
            version = yaml.safe_load((folder / "app.yaml").read_text())["version"]
            tag = f"{PREFIX}-bioreactor:{version}"
            built = build_image(
                client, folder, tag=tag, wheelhouse=wheels, progress=lambda line: None
            )
            tags[key] = built.tag
            tags[key + "_seconds"] = str(built.seconds["total_s"])
        yield tags
    finally:
        for key, tag in tags.items():
            if not key.endswith(("_seconds", "wheelhouse")):
                _run(["docker", "rmi", "-f", tag])
        # The install stage's cache images (dangling once the tags are gone) are ours too.
        _run(["docker", "image", "prune", "-f", "--filter", "label=org.vplc.stage=install"])


def drop_release_tags(deployment: str) -> None:
    """Untag the images the deployment's history kept (the images stay for other tests)."""
    fmt = "{{.Repository}}:{{.Tag}}"
    out = _run(["docker", "images", "--format", fmt, f"vplc-release-{deployment}"])
    for tag in out.stdout.split():
        _run(["docker", "rmi", tag])


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def deployments(client: Any, tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Write deployment files with unique names; remove their containers and volumes after."""
    names: list[str] = []

    def write(image: str, **fields: Any) -> Path:
        name = fields.pop("name", f"{PREFIX}-{len(names)}-{uuid.uuid4().hex[:4]}")
        names.append(name)
        # A short probation keeps the suite fast; test_probation.py runs the default window.
        doc = {"name": name, "image": image, "health_timeout_s": 60, "probation_s": 3, **fields}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    yield write
    for name in names:
        for suffix in ("", "-previous"):
            _run(["docker", "rm", "-f", f"vplc-{name}{suffix}"])
        _run(["docker", "volume", "rm", "-f", f"vplc-{name}-state"])
        drop_release_tags(name)


@pytest.fixture
def manager(client: Any, state_dir: Path) -> Any:
    from containers._manager import DeploymentManager

    return DeploymentManager(client, state_dir=state_dir, user="pytest", progress=lambda x: None)

"""Connection to the Docker engine, with the one message that tells a user how to start it."""

from __future__ import annotations

import os

import docker
import docker.errors

from containers._errors import EngineUnavailableError

__all__ = ["connect"]


def connect(*, timeout_s: int = 120) -> docker.DockerClient:
    """A client for ``DOCKER_HOST`` (default the local socket) that has answered a ping."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=timeout_s)
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailableError(
            f"cannot reach the Docker engine at {where}: {_reason(exc)}. Start it with "
            f"`systemctl start docker` (or run `dockerd &` as root where there is no "
            f"systemd), or point DOCKER_HOST at a running engine; install it with "
            f"`apt-get install -y docker.io` if it is missing"
        ) from None
    return client


def _reason(exc: Exception) -> str:
    text = str(exc)
    # The SDK nests the socket error deep inside its message; the tail is the useful part.
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError"):
        if marker in text:
            return marker.replace("Error", " error").lower().replace("filenotfound", "no socket")
    return text.splitlines()[0][:200]

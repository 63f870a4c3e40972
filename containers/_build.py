"""``docker build`` of a prepared context: no network, streamed log, errors that say which step.

Every build runs with network mode ``none``: the base is local, the wheels are in the context
and pip installs with ``--no-index``, so a step that reaches for the network is a mistake the
build must refuse, not silently depend on (a plant network has no internet).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import docker
import docker.errors

from containers._base import Progress
from containers._dockerfile import VALIDATE_STEP
from containers._errors import BuildError, InvalidInputError

__all__ = ["BUILD_NETWORK", "docker_build"]

BUILD_NETWORK = "none"
_STEP = re.compile(r"^Step \d+/\d+ : ")
_LAYER = re.compile(r"^ ---> ([0-9a-f]{12})$")


def docker_build(
    client: docker.DockerClient,
    ctx: Path,
    *,
    tag: str,
    labels: dict[str, str],
    no_cache: bool,
    progress: Progress,
) -> str:
    """Stream the build log; return the image id, or raise with the failing step and the log."""
    tail: list[str] = []
    step, layer = "", ""
    try:
        for chunk in client.api.build(
            path=str(ctx),
            tag=tag,
            labels=labels,
            rm=True,
            forcerm=True,
            nocache=no_cache,
            pull=False,
            network_mode=BUILD_NETWORK,
            decode=True,
        ):
            if "error" in chunk:
                _drop_partial(client, layer)
                _fail(tag, step, str(chunk["error"]).strip(), tail)
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    if _STEP.match(line):
                        step = _STEP.sub("", line)
                    elif m := _LAYER.match(line):
                        layer = m.group(1)
                    tail = [*tail[-14:], line]
                    progress("  " + line)
    except docker.errors.APIError as exc:
        raise BuildError(f"docker build of {tag} failed: {exc.explanation or exc}") from None
    return str(client.images.get(tag).id)


def _drop_partial(client: docker.DockerClient, layer: str) -> None:
    """A refused build must not leave its untagged layers (hundreds of MB) behind: remove the
    last one, which takes its untagged parents along; a layer other images build on stays."""
    if not layer:
        return
    with contextlib.suppress(docker.errors.APIError):
        if not client.images.get(layer).tags:  # never the base, nor any image someone tagged
            client.images.remove(layer)


def _fail(tag: str, step: str, error: str, tail: list[str]) -> None:
    if VALIDATE_STEP in step:
        # The app itself is invalid (its logic does not import, a program does not construct):
        # invalid input, exit 2, with the runtime's own one-paragraph message.
        said = [x.strip() for x in tail if "error:" in x] or tail[-3:]
        raise InvalidInputError(
            f"{tag}: refused: `vplc validate` inside the image rejects the app: " + " ".join(said)
        )
    raise BuildError(
        f"docker build of {tag} failed at step `{step}`: {error} (build steps run with "
        f"network mode {BUILD_NETWORK}: nothing may be fetched)\n" + "\n".join(tail)
    )

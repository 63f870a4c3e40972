"""Release history of a deployment: the last N images by ID, with versions, digests and times.

Each deployment record (``deployments/<name>.json``) keeps ``history``, newest first, one entry
per image ID (an image made current again moves to the front). ``rollback`` without ``--to``
goes to the second entry; ``--to`` names a version or an image ID (prefix). Every kept image is
also tagged ``vplc-release-<deployment>:<12 hex of its ID>``, so a rebuilt tag or
``docker image prune`` cannot take a rollback target away; the tag goes when the release
leaves the history or the deployment is removed.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import docker
import docker.errors

from containers._errors import InvalidInputError
from containers._image import LABEL

__all__ = [
    "drop_release_tags",
    "find_release",
    "format_history",
    "keep_release_tag",
    "merge_history",
    "release_entry",
    "release_repo",
    "short_id",
]

_HEX = re.compile(r"^(sha256:)?[0-9a-f]{4,64}$")


def short_id(image_id: str | None) -> str:
    return (image_id or "").removeprefix("sha256:")[:12]


def release_repo(deployment: str) -> str:
    return f"vplc-release-{deployment}"


def release_entry(
    client: docker.DockerClient, image: str, *, what: str, who: str
) -> dict[str, Any]:
    """The history entry of ``image`` (tag or ID) as it exists in the engine now."""
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        raise InvalidInputError(f"image {image!r} does not exist in this Docker engine") from None
    labels = found.labels or {}
    return {
        "image_id": str(found.id),
        "image": image,
        "app": labels.get(LABEL + "app"),
        "version": labels.get(LABEL + "version"),
        "app_sha256": labels.get(LABEL + "app-sha256"),
        "manifest_sha256": labels.get(LABEL + "manifest-sha256"),
        "runtime_version": labels.get(LABEL + "runtime-version"),
        "build_time": labels.get(LABEL + "build-time"),
        "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "what": what,
        "who": who,
    }


def merge_history(
    old: list[dict[str, Any]], entry: dict[str, Any], *, keep: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(new history, entries that fell out): ``entry`` first, one entry per image ID."""
    if entry["image"].startswith("sha256:"):
        # A rollback by ID: keep showing the tag the image was deployed under.
        for e in old:
            if e["image_id"] == entry["image_id"]:
                entry = entry | {"image": e["image"]}
                break
    rest = [e for e in old if e["image_id"] != entry["image_id"]]
    merged = [entry, *rest]
    return merged[:keep], merged[keep:]


def keep_release_tag(client: docker.DockerClient, deployment: str, image_id: str) -> None:
    """Tag the image so that it stays while it is in the history (best effort)."""
    with contextlib.suppress(docker.errors.APIError):
        client.images.get(image_id).tag(release_repo(deployment), short_id(image_id))


def drop_release_tags(
    client: docker.DockerClient, deployment: str, entries: list[dict[str, Any]]
) -> None:
    """Untag releases that left the history (the image itself goes only if nothing uses it)."""
    for e in entries:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(f"{release_repo(deployment)}:{short_id(e['image_id'])}")


def find_release(name: str, history: list[dict[str, Any]], ref: str | None) -> dict[str, Any]:
    """The entry ``rollback`` goes to: the previous one, or the one ``ref`` names."""
    if ref is None:
        if len(history) < 2:
            raise InvalidInputError(f"deployment {name!r} has no previous version to roll back to")
        return history[1]
    matches = [e for e in history if e.get("version") == ref]
    if not matches and _HEX.match(ref.lower()):
        want = ref.lower().removeprefix("sha256:")
        matches = [e for e in history if e["image_id"].removeprefix("sha256:").startswith(want)]
        if len(matches) > 1:
            ids = ", ".join(short_id(e["image_id"]) for e in matches)
            raise InvalidInputError(f"--to {ref}: ambiguous image ID prefix (matches {ids})")
    if not matches:
        raise InvalidInputError(
            f"--to {ref}: no release of deployment {name!r} has that version or image ID; "
            f"kept releases: {_brief(history)} (`vplc history {name}`)"
        )
    target = matches[0]
    if target is history[0]:
        raise InvalidInputError(f"deployment {name!r} runs {ref} already")
    return target


def _brief(history: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e.get('version')} ({short_id(e['image_id'])})" for e in history) or "none"


def format_history(history: list[dict[str, Any]]) -> list[str]:
    """The table of ``vplc history NAME``: newest first, the running release marked ``*``."""
    rows = [f"  {'version':<12}{'image id':<14}{'app sha256':<14}{'deployed at':<22}how / tag"]
    for i, e in enumerate(history):
        mark = "*" if i == 0 else " "
        rows.append(
            f"{mark} {e.get('version') or '?':<12}{short_id(e['image_id']):<14}"
            f"{(e.get('app_sha256') or '-')[:12]:<14}{e.get('deployed_at', ''):<22}"
            f"{e.get('what', '')} by {e.get('who', '?')}, {e.get('image', '')}"
        )
    return rows

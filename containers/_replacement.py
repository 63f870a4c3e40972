"""What every update strategy checks before it replaces a deployment's image.

Shared by stop-and-restart (containers/_rollout.py) and blue-green
(containers/_bluegreen_deploy.py), so neither imports the other's module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docker.models.containers import Container

from containers._errors import InvalidInputError
from containers._history import short_id
from containers._image import LABEL
from containers._manager import DeploymentManager
from containers._spec import Deployment

__all__ = ["Replacement", "deployment_record", "plan_replacement"]


@dataclass(frozen=True)
class Replacement:
    """What every update strategy checks first: the deployment, both images, the old container."""

    rec: dict[str, Any]
    old_dep: Deployment
    new_dep: Deployment
    old: Container
    old_labels: dict[str, str]
    new_labels: dict[str, str]
    new_image_id: str

    @property
    def old_image_id(self) -> str | None:
        return self.old.attrs.get("Image")

    @property
    def image_ids(self) -> dict[str, str | None]:
        """For the audit record: which exact images the operation went from and to."""
        return {"from_image_id": self.old_image_id, "to_image_id": self.new_image_id}

    @property
    def app(self) -> str:
        return self.old_labels.get(LABEL + "app", "")

    @property
    def from_version(self) -> str | None:
        return self.old_labels.get(LABEL + "version")

    @property
    def to_version(self) -> str | None:
        return self.new_labels.get(LABEL + "version")


def plan_replacement(
    mgr: DeploymentManager, name: str, image: str, *, what: str, deadline_s: float | None
) -> Replacement:
    """Check that ``image`` may replace deployment ``name`` (same app, passes the checks).

    A refusal (InvalidInputError) is recorded in the audit trail before it is raised.
    """
    with mgr.refusals(what, name, to_image=image) as context:
        rec = deployment_record(mgr, name)
        old_dep = Deployment.model_validate(rec["spec"])
        new_dep = old_dep.model_copy(update={"image": image})
        if deadline_s is not None:
            new_dep = new_dep.model_copy(update={"health_timeout_s": deadline_s})
        old = mgr.container(name)
        context["from_image_id"] = old.attrs.get("Image")
        old_labels = dict(old.labels)
        new_labels = mgr.check(new_dep, source=f"deployment {name!r}")
        new_id = context["to_image_id"] = mgr.image_id(image)
        if new_labels.get(LABEL + "app") != old_labels.get(LABEL + "app"):
            raise InvalidInputError(
                f"image {image!r} holds app {new_labels.get(LABEL + 'app')!r}, but deployment "
                f"{name!r} runs app {old_labels.get(LABEL + 'app')!r}"
            )
        if new_id == old.attrs.get("Image"):
            raise InvalidInputError(
                f"deployment {name!r} runs image {short_id(new_id)} ({image}) already"
            )
    return Replacement(rec, old_dep, new_dep, old, old_labels, new_labels, new_id)


def deployment_record(mgr: DeploymentManager, name: str) -> dict[str, Any]:
    rec = mgr.store.get(name)
    if rec is None:
        raise InvalidInputError(f"no deployment named {name!r} in {mgr.store.dir}")
    return rec

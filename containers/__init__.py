"""Container images, deployment manager and rollout for vplc apps (see README.md here).

The names below load lazily: the container health check (``python -m containers.health``)
and ``vplc run`` import this package and must not pay for the docker SDK.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BuildError",
    "ContainersError",
    "DeployError",
    "Deployment",
    "DeploymentManager",
    "EngineUnavailableError",
    "InvalidInputError",
    "build_image",
    "build_plant_image",
    "build_wheels",
    "connect",
    "load_deployment",
    "rollback",
    "update",
]

_WHERE = {
    "BuildError": "_errors",
    "ContainersError": "_errors",
    "DeployError": "_errors",
    "EngineUnavailableError": "_errors",
    "InvalidInputError": "_errors",
    "Deployment": "_spec",
    "load_deployment": "_spec",
    "DeploymentManager": "_manager",
    "build_image": "_image",
    "build_plant_image": "_plant",
    "build_wheels": "_wheels",
    "connect": "_client",
    "rollback": "_rollout",
    "update": "_rollout",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'containers' has no attribute {name!r}")
    return getattr(importlib.import_module(f"containers.{_WHERE[name]}"), name)

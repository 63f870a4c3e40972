"""Errors of the containers layer; each message is what the user sees, with its exit code."""

from __future__ import annotations

__all__ = [
    "BuildError",
    "ContainersError",
    "DeployError",
    "EngineUnavailableError",
    "InvalidInputError",
]


class ContainersError(Exception):
    """Base class: ``exit_code`` 1 for a failed operation, 2 for invalid input."""

    exit_code = 1


class InvalidInputError(ContainersError):
    """A deployment file, app folder or flag that cannot be used (exit 2)."""

    exit_code = 2


class EngineUnavailableError(ContainersError):
    """The Docker engine does not answer (exit 2: the machine is not set up, nothing ran)."""

    exit_code = 2


class BuildError(ContainersError):
    """An image could not be built."""


class DeployError(ContainersError):
    """A deployment, update or rollback failed (after cleaning up or rolling back)."""

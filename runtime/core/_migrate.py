"""Which old versions an app's ``migrate(old_version, state)`` is for (``@migration(below=…)``).

An app's migrate hook sees the whole state of a version change, so with one the state layer
takes its slow path (the whole state read, copied, migrated and merged at the swap, on the
scan thread: 0.4 → 5 ms for the bioreactor, 64 → 590 ms for plant10). A hook that exists
for one old layout says so, and versions at or above ``below`` go the fast way:

    @migration(below="1.1.0")  # 1.0.x kept control_on in the batch program
    def migrate(old_version: str, state: dict[str, Any]) -> dict[str, Any]: ...

A hook without the decorator runs on every version change, as it always did.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["Migrate", "applies", "migration"]

# An app's optional state migration: old version, flat state by instance path → new state.
Migrate = Callable[[str, dict[str, Any]], dict[str, Any]]

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_BELOW = "vplc_migrates_below"


def _key(version: str) -> tuple[int, int, int, int] | None:
    """Semantic-version order (build metadata ignored; a pre-release before its release)."""
    m = _VERSION.match(version)
    if m is None:
        return None
    return int(m[1]), int(m[2]), int(m[3]), 0 if m[4] else 1


def migration(*, below: str) -> Callable[[Migrate], Migrate]:
    """Declare that the decorated ``migrate`` converts state of versions older than ``below``."""
    if _key(below) is None:
        raise ValueError(f"migration(below={below!r}): not a semantic version like 1.1.0")

    def mark(fn: Migrate) -> Migrate:
        setattr(fn, _BELOW, below)
        return fn

    return mark


def applies(migrate: Migrate | None, old_version: str) -> bool:
    """Must ``migrate`` see state saved or run by ``old_version``?

    Undecorated: always. Decorated: when ``old_version`` is below the bound, or is not a
    semantic version at all (nothing to compare, so the hook decides).
    """
    if migrate is None:
        return False
    below = getattr(migrate, _BELOW, None)
    if below is None:
        return True
    old, bound = _key(old_version), _key(below)
    return old is None or bound is None or old < bound

"""Driver registry by name: explicit registration plus the ``vplc.drivers`` entry points."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from hal._driver import DriverError, DriverFactory

ENTRY_POINT_GROUP = "vplc.drivers"

_registry: dict[str, DriverFactory] = {}


def register_driver(kind: str, factory: DriverFactory) -> None:
    """Make a driver kind available under ``kind`` (the manifest's ``drivers.*.type``)."""
    _registry[kind] = factory


def _installed() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def driver_kinds() -> list[str]:
    """All driver kinds known now (registered or installed as entry points), unloaded."""
    return sorted(set(_registry) | set(_installed()))


def get_driver_factory(kind: str) -> DriverFactory:
    """Look up a driver kind, importing its plugin on first use; errors list what exists."""
    if kind in _registry:
        return _registry[kind]
    ep = _installed().get(kind)
    if ep is None:
        known = ", ".join(driver_kinds()) or "none"
        raise DriverError(f"unknown driver type {kind!r}; installed types: {known}")
    try:
        factory: DriverFactory = ep.load()
    except Exception as exc:
        raise DriverError(f"driver type {kind!r} ({ep.value}) failed to load: {exc}") from exc
    _registry[kind] = factory
    return factory

"""Points added or removed by an online change: the next process image and the driver rebinding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hal import Direction, Driver, Point, PointSpec, ProcessImage
from runtime.core._engine import ScanEngine
from runtime.core.manifest import AppManifest

Binding = list[tuple[Point, str]]


@dataclass
class PointChange:
    """The image the new version runs over, and each affected driver's old and new binding.

    Kept points are the very cells the drivers and the old programs hold; added points are
    new cells; removed outputs are driven to their safe value and written once before their
    driver lets go of them (``switch``). ``switch_back`` undoes it for a fallback.
    """

    old_image: ProcessImage
    new_image: ProcessImage
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bindings: dict[str, tuple[Binding, Binding]] = field(default_factory=dict)

    def switch(self, engine: ScanEngine, drivers: Sequence[Driver]) -> None:
        """On the scan thread between cycles: safe-write removed outputs, rebind, new image."""
        gone = [self.old_image[n] for n in self.removed]
        for point in gone:
            if point.direction is Direction.OUT:
                point.unforce()
                point.value = point.safe_value
        for driver in drivers:
            if driver.name in self.bindings:
                if any(p in gone for p, _ in self.bindings[driver.name][0]):
                    driver.write_outputs(engine.now_ns)  # the safe values, once, while bound
                driver.rebind(self.bindings[driver.name][1])  # type: ignore[attr-defined]
        engine.image = self.new_image
        engine.outputs.use_image(self.new_image)  # the output check follows (tasks replan)

    def switch_back(self, engine: ScanEngine, drivers: Sequence[Driver]) -> None:
        for driver in drivers:
            if driver.name in self.bindings:
                driver.rebind(self.bindings[driver.name][0])  # type: ignore[attr-defined]
        engine.image = self.old_image
        engine.outputs.use_image(self.old_image)


def plan_points(
    engine: ScanEngine, old: AppManifest, new: AppManifest
) -> tuple[PointChange | None, list[str]]:
    """The point change from ``old`` to ``new`` (None: same points) and every refusal reason.

    A kept point must keep its whole declaration (type, direction, driver, channel, scaling,
    safe value...): programs and drivers hold its cell. An added or removed point needs its
    driver to ``rebind`` while open, and an added one a channel that takes its direction.
    """
    olds = {p.name: p for p in old.points}
    news = {p.name: p for p in new.points}
    problems = []
    for name in sorted(set(olds) & set(news)):
        changed = [k for k, v in olds[name].model_dump().items() if news[name].model_dump()[k] != v]
        if changed:
            problems.append(f"point {name!r} changes {', '.join(changed)}")
    added = [n for n in news if n not in olds]
    removed = [n for n in olds if n not in news]
    if not added and not removed:
        return None, problems
    drivers = {d.name: d for d in engine.drivers}
    touched = {news[n].driver for n in added} | {olds[n].driver for n in removed}
    for name in sorted(touched):
        driver = drivers.get(name)
        if driver is not None and not callable(getattr(driver, "rebind", None)):
            what = ", ".join(
                sorted(n for n in added + removed if _driver_of(n, olds, news) == name)
            )
            problems.append(
                f"points added/removed on driver {name!r} ({what}): {type(driver).__name__} "
                "cannot bind points while running"
            )
    for name in added:
        problems += _channel_problems(drivers, news[name].driver, news[name])
    if problems:
        return None, problems
    image = ProcessImage.of(
        engine.image[n] if n in olds else Point(news[n], i) for i, n in enumerate(news)
    )
    change = PointChange(old_image=engine.image, new_image=image, added=added, removed=removed)
    for name in sorted(touched):
        before = [(engine.image[s.name], s.channel) for s in old.points if s.driver == name]
        after = [(image[s.name], s.channel) for s in new.points if s.driver == name]
        change.bindings[name] = (before, after)
    return change, []


def _channel_problems(drivers: dict[str, Driver], driver_name: str, spec: PointSpec) -> list[str]:
    driver = drivers.get(driver_name)
    if driver is None:
        return [f"point {spec.name!r}: no driver {driver_name!r}"]
    info = driver.channels().get(spec.channel)
    if info is None:
        known = ", ".join(sorted(driver.channels()))
        return [
            f"point {spec.name!r}: driver {driver_name!r} has no channel {spec.channel!r} "
            f"(has: {known})"
        ]
    if spec.direction not in info.directions:
        return [
            f"point {spec.name!r}: channel {spec.channel!r} of driver {driver_name!r} does "
            f"not take direction {spec.direction.value!r}"
        ]
    return []


def _driver_of(name: str, olds: dict[str, PointSpec], news: dict[str, PointSpec]) -> str:
    return (news.get(name) or olds[name]).driver

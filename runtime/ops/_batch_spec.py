"""Specification limits watched during a batch: excursions, and those long enough to deviate.

``SpecWatch.sample`` runs in a cycle hook: a read, two comparisons, and work only when the
signal leaves or re-enters its limits. An excursion longer than the limit's ``for_s`` is a
deviation, with its start, end, duration and extreme (the value farthest outside the limits).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.core._gmp import SpecLimit

if TYPE_CHECKING:
    from runtime.core._instances import Accessor
    from runtime.core._loader import LoadedApp

__all__ = ["SpecWatch", "app_digest"]


def app_digest(folder: Path) -> str:
    """sha256 of the app folder's sha256sum listing: the same value as the image label
    ``org.vplc.app-sha256`` (containers/_digest.py), so a reviewer can compare the two."""
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts),
        key=lambda p: p.relative_to(folder).as_posix().encode(),
    )
    lines = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}\n"
        for p in files
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def _reader(
    app: LoadedApp, leaves: dict[str, Accessor], name: str, where: str
) -> Callable[[], Any]:
    if name in app.image:
        point = app.image[name]
        return lambda: point.value
    acc = leaves.get(name)
    if acc is None:
        raise ValueError(f"{where}: {name!r} is neither a point nor a state leaf of the app")
    owner, attr = acc
    return lambda: getattr(owner, attr)


class SpecWatch:
    """One ``gmp.specifications`` entry, followed cycle by cycle during a batch."""

    def __init__(self, spec: SpecLimit, app: LoadedApp, leaves: dict[str, Accessor]) -> None:
        self.spec = spec
        lo, hi = spec.bounds
        self.lo = -math.inf if lo is None else lo
        self.hi = math.inf if hi is None else hi
        self.for_ns = round(spec.for_s * 1e9)
        where = f"gmp.specifications[{spec.name}]"
        self.get = _reader(app, leaves, spec.signal, f"{where}.signal")
        self.during: Callable[[], Any] | None = None
        self.allowed: frozenset[Any] = frozenset()
        if spec.during is not None:
            self.during = _reader(app, leaves, spec.during.path, f"{where}.during.path")
            self.allowed = frozenset(spec.during.in_)
        self.reset()

    def reset(self) -> None:
        self.start_ns = -1
        self.worst = 0.0
        self.extreme = 0.0
        self.extreme_ns = 0
        self.short = 0  # excursions within the allowed time

    def describe(self) -> dict[str, Any]:
        s = self.spec
        lo, hi = s.bounds
        during = None if s.during is None else {"path": s.during.path, "in": list(s.during.in_)}
        return {"name": s.name, "signal": s.signal, "low": lo, "high": hi, "unit": s.unit,
                "for_s": s.for_s, "during": during}  # fmt: skip

    def sample(self, now_ns: int) -> dict[str, Any] | None:
        """One cycle's value; a finished deviation when the signal came back inside."""
        v = self.get()
        lo, hi = self.lo, self.hi
        out = (v < lo or v > hi) and (self.during is None or self.during() in self.allowed)
        if out:
            d = lo - v if v < lo else v - hi
            if self.start_ns < 0:
                self.start_ns, self.worst, self.extreme, self.extreme_ns = now_ns, d, v, now_ns
            elif d > self.worst:
                self.worst, self.extreme, self.extreme_ns = d, v, now_ns
            return None
        if self.start_ns < 0:
            return None
        return self._end(now_ns, ongoing=False)

    def finish(self, now_ns: int) -> dict[str, Any] | None:
        """The batch ends: an excursion still open counts up to now."""
        return self._end(now_ns, ongoing=True) if self.start_ns >= 0 else None

    def _end(self, now_ns: int, *, ongoing: bool) -> dict[str, Any] | None:
        start, self.start_ns = self.start_ns, -1
        duration = now_ns - start
        if duration <= self.for_ns and self.for_ns > 0:
            self.short += 1
            return None
        s = self.spec
        return {
            "spec": s.name,
            "signal": s.signal,
            "low": None if self.lo == -math.inf else self.lo,
            "high": None if self.hi == math.inf else self.hi,
            "unit": s.unit,
            "allowed_s": s.for_s,
            "side": "high" if self.extreme > self.hi else "low",
            "duration_s": round(duration / 1e9, 3),
            "extreme": self.extreme,
            "ongoing_at_end": ongoing,
            "start_ns": start,
            "end_ns": now_ns,
            "extreme_ns": self.extreme_ns,
        }

"""The output check: each write coerced to its point's IEC type and limits before a driver sees it.

After a task's programs ran, the outputs they can write are checked (a precomputed list per
task). A valid value of the exact Python type passes on the fast path: one type test and
one chained comparison, in C (runtime/core/_outscan.pyx) where it was built. Anything else is
coerced (an int to a REAL, 1.0 to an INT) or, if it is not a valid value (NaN, ±inf, out of
range, a BOOL of 0.7, a wrong type), handled by the point's ``on_invalid`` policy: ``clamp``
to the nearest limit (``hold`` where there is none), ``hold`` the last good value, or
``fault``. An invalid episode (consecutive checks with an invalid write) is logged when it
starts and when it ends, with the point, the task and the programs that can write it, and
counted; nothing invalid reaches a driver.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from hal import IecType, OnInvalid, Point, ProcessImage

_CLAMP, _FAULT = OnInvalid.CLAMP, OnInvalid.FAULT
_FAST_TYPE = {
    IecType.BOOL: bool,
    IecType.INT: int,
    IecType.DINT: int,
    IecType.REAL: float,
    IecType.LREAL: float,
}


@dataclass
class _Episode:
    start_ns: int
    task: str
    programs: list[str]
    writes: int = 1


@dataclass
class _Record:
    """What happened to one output over the run (only outputs that ever had a bad write)."""

    policy: str
    invalid_writes: int = 0
    episodes: int = 0
    last_reason: str = ""


def scan_entry(p: Point) -> tuple[Point, type, Any, Any]:
    """What a scan tests of an output: ``(point, exact Python type, low, high)``."""
    if p.type is IecType.STRING:
        return p, str, None, None
    return p, _FAST_TYPE[p.type], *p.spec.output_limits()


class PyOutputScan:
    """The fast path in Python: the reference of the compiled ``OutputScan`` (_outscan.pyx)."""

    __slots__ = ("_entries", "_strings")

    def __init__(self, entries: Iterable[tuple[Point, type, Any, Any]]) -> None:
        self._entries = [e for e in entries if e[1] is not str]
        self._strings = [e[0] for e in entries if e[1] is str]

    def scan(self) -> list[Point] | None:
        """Keep each valid value as its point's ``good``; return the other points, or None."""
        bad: list[Point] | None = None
        for p, t, lo, hi in self._entries:
            v = p.value
            if type(v) is t and lo <= v <= hi:
                p.good = v
            elif bad is None:
                bad = [p]
            else:
                bad.append(p)
        for p in self._strings:
            v = p.value
            if type(v) is str:
                p.good = v
            elif bad is None:
                bad = [p]
            else:
                bad.append(p)
        return bad


class OutputPlan:
    """The outputs one task's programs can write, pre-digested for the fast path."""

    __slots__ = ("fallback", "guard", "members", "programs", "scan", "task")

    def __init__(self, guard: OutputGuard, task: str, programs: Collection[str], fallback: bool):
        self.guard = guard
        self.task = task
        self.fallback = fallback  # also checks outputs no program asked for
        self.members: frozenset[Point] = frozenset()
        self.programs: frozenset[str] = frozenset()
        self.scan: Callable[[], list[Point] | None] = _nothing
        self.replan(programs)

    def replan(self, programs: Collection[str]) -> None:
        """Recompute for these program names (an online change may add programs or points)."""
        names = frozenset(programs)
        fallback = self.fallback
        chosen = [
            p
            for p in self.guard.image.outputs
            if not names.isdisjoint(p.users) or (fallback and not p.users)
        ]
        entry = self.guard.entry_of
        self.scan = Scan([entry(p) for p in chosen]).scan
        self.members = frozenset(chosen)
        self.programs = names


def _nothing() -> list[Point] | None:
    return None


class OutputGuard:
    """Checks output writes per task; keeps the invalid-write statistics of the whole app."""

    def __init__(self, image: ProcessImage, *, log: Any, fault: Callable[..., None]) -> None:
        self.image = image
        self.log = log
        self._fault = fault  # the engine's fault(reason, **details)
        self.invalid_writes = 0
        self.episodes = 0
        self.records: dict[str, _Record] = {}
        # Outputs inside an invalid episode; the engine reads it every cycle (an attribute,
        # not a property: this is the hot path), as the end of an episode must be seen.
        self.open_episodes: dict[Point, _Episode] = {}
        # The fast-path tuple of every output, built once: an online change replans on the
        # scan thread and must not recompute limits there.
        self.entry = {p: scan_entry(p) for p in image.outputs}

    def entry_of(self, p: Point) -> tuple[Point, type, Any, Any]:
        """The fast-path tuple of an output (built on first use for a point added online)."""
        found = self.entry.get(p)
        if found is None:
            found = self.entry[p] = scan_entry(p)
        return found

    def use_image(self, image: ProcessImage) -> None:
        """Follow an online change that added or removed points; tasks replan afterwards."""
        self.image = image
        for p in image.outputs:
            self.entry_of(p)

    def plan(self, task: str, programs: Collection[str], *, fallback: bool) -> OutputPlan:
        return OutputPlan(self, task, programs, fallback)

    def settle(self, plan: OutputPlan, bad: list[Point] | None, now_ns: int) -> None:
        """The slow path, after ``plan.scan()`` found ``bad`` points or an episode is open."""
        self._settle(plan, bad or [], now_ns)

    def _settle(self, plan: OutputPlan, bad: list[Point], now_ns: int) -> None:
        invalid: set[Point] = set()
        for p in bad:
            written = p.value
            value, why = p.judge(written)
            if not why:  # a coercion (an int to a REAL, 1.0 to an INT): not an invalid write
                p.value = p.good = value
                continue
            invalid.add(p)
            if self._invalid(plan, p, written, value, why, now_ns):
                return  # FAULT: every output is at its safe value now
        for p in [p for p in self.open_episodes if p in plan.members and p not in invalid]:
            self._close(p, now_ns)

    def _invalid(
        self, plan: OutputPlan, p: Point, written: Any, nearest: Any, why: str, now_ns: int
    ) -> bool:
        self.invalid_writes += 1
        rec = self.records.get(p.name)
        if rec is None:
            rec = self.records[p.name] = _Record(policy=p.policy.value)
        rec.invalid_writes += 1
        rec.last_reason = why
        policy = p.policy
        if policy is _FAULT:
            action = "fault: every output to its safe value"
        elif policy is _CLAMP and nearest is not None:
            p.value = p.good = nearest
            action = f"clamped to {nearest!r}"
        else:
            p.value = p.good
            action = f"held at {p.good!r}"
        episode = self.open_episodes.get(p)
        if episode is not None:
            episode.writes += 1
        else:
            programs = sorted(plan.programs.intersection(p.users)) or list(p.users)
            self.open_episodes[p] = _Episode(now_ns, plan.task, programs)
            self.episodes += 1
            rec.episodes += 1
            self.log.warning(
                "output_invalid",
                point=p.name,
                task=plan.task,
                programs=programs,
                written=_show(written),
                reason=why,
                policy=policy.value,
                action=action,
            )
        if policy is _FAULT:
            writers = ", ".join(self.open_episodes[p].programs) or "no program"
            self._fault(
                f"output {p.name!r} written {_show(written)} by {writers}: {why} "
                "(on_invalid: fault)",
                point=p.name,
                task=plan.task,
            )
            return True
        return False

    def _close(self, p: Point, now_ns: int) -> None:
        episode = self.open_episodes.pop(p)
        self.log.info(
            "output_valid_again",
            point=p.name,
            task=episode.task,
            programs=episode.programs,
            invalid_writes=episode.writes,
            lasted_s=(now_ns - episode.start_ns) / 1e9,
        )

    def statistics(self) -> dict[str, Any]:
        return {
            "invalid_writes": self.invalid_writes,
            "invalid_episodes": self.episodes,
            "invalid_now": sorted(p.name for p in self.open_episodes),
            "points": {
                name: {
                    "policy": r.policy,
                    "invalid_writes": r.invalid_writes,
                    "episodes": r.episodes,
                    "last_reason": r.last_reason,
                }
                for name, r in sorted(self.records.items())
            },
        }


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}…"


Scan: type[Any] = PyOutputScan
IMPLEMENTATION = "python"  # which scan the tasks use: 'cython' or 'python'
try:  # the C core when it was built at install time (setup.py), else the reference
    from runtime.core._outscan import OutputScan

    Scan = OutputScan
    IMPLEMENTATION = "cython"
except ImportError:
    pass

"""The three-way state merge of a version change: old initial, running and new initial value.

Every version change (online change, warm start from a retain file of another version,
snapshot restore in a blue-green handover) decides each variable the same way:

=====================  ==================================  ==============================
old initial → new      running value                       outcome
=====================  ==================================  ==============================
unchanged              anything                            ``kept`` (converted if typed anew)
changed                equal to the old initial            ``new_value``: the new initial
changed                changed at run time                 ``conflict``: ``prefer`` decides;
                                                           none: running kept, unresolved
(not in old)           –                                   ``added``: the new initial
in old, not in new     –                                   ``dropped``
type changed, lossy    –                                   ``refused`` (unless ``migrate``)
unknown (old file)     anything                            ``kept``, said in the note
=====================  ==================================  ==============================

Values the app's ``migrate(old_version, state)`` produced or changed are ``migrated``: taken as
they are (converted losslessly to the new type, or refused). Parameters follow the same rules
with their ``default`` as initial value and a range check: a running value outside the new
range is refused, unless ``prefer="new"`` resets it to the new default. Everything here is
pure: values in, decisions out; callers write the values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.state._tree import convert

Prefer = Literal["new", "running"] | None
Check = Callable[[Any], Any]  # a parameter's spec.check: coerce + range, raises ValueError
OUTCOMES = ("kept", "new_value", "conflict", "added", "dropped", "refused", "migrated")
PREFER_CHOICES = ("new", "running")
CARRIED = ("kept", "new_value", "conflict", "migrated")  # outcomes whose value is written


class _Missing:
    """No such value: a variable absent from one side, or an initial nobody recorded."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 2× (thousands per plan)
class Decision:
    """What one variable becomes; ``value`` is what the new version starts with."""

    path: str
    outcome: str
    value: Any = None
    old_initial: Any = MISSING
    running: Any = MISSING
    new_initial: Any = MISSING
    note: str = ""
    unresolved: bool = False  # a conflict no ``prefer`` decided (fatal in strict mode)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "outcome": self.outcome}
        for key in ("old_initial", "running", "new_initial"):
            value = getattr(self, key)
            if value is not MISSING:
                out[key] = value
        if self.outcome not in ("dropped", "refused"):
            out["value"] = self.value
        if self.note:
            out["note"] = self.note
        if self.unresolved:
            out["unresolved"] = True
        return out


def same(a: Any, b: Any) -> bool:
    """Equal as initial values: NaN equals NaN, a truth value never equals a number."""
    ta, tb = type(a), type(b)
    if (ta is bool) != (tb is bool):
        return False
    try:
        if a == b:
            return True
    except Exception:  # an exotic value whose == raises: treat as different
        return False
    return ta is float and tb is float and math.isnan(a) and math.isnan(b)


def same_initial(old: Any, new: Any) -> bool:
    """Is the new version's initial value the old one, perhaps retyped (0 → 0.0, False → 0)?"""
    if same(old, new):
        return True
    try:
        converted, _ = convert(old, new)
    except TypeError:
        return False
    return same(converted, new)


def decide(
    path: str,
    old_initial: Any,
    running: Any,
    new_initial: Any,
    *,
    prefer: Prefer = None,
    check: Check | None = None,
) -> Decision:
    """The decision for one variable (see the module's table)."""
    outcome, value, note, unresolved = _rule(old_initial, running, new_initial, prefer)
    if check is not None and outcome not in ("dropped", "refused"):
        outcome, value, note = _fit(check, outcome, value, note, new_initial, prefer)
    return Decision(path, outcome, value, old_initial, running, new_initial, note, unresolved)


Rule = tuple[str, Any, str, bool]  # outcome, value, note, unresolved


def _rule(old: Any, running: Any, new: Any, prefer: Prefer) -> Rule:
    if new is MISSING:
        return "dropped", None, "not in the new version", False
    if running is MISSING:
        return "added", new, "", False
    if old is MISSING:
        return _keep(running, new, "kept", "old initial value unknown (not recorded): kept")
    if same_initial(old, new):
        return _keep(running, new, "kept", "")
    if same(running, old):
        return "new_value", new, "", False
    if prefer == "new":
        return "conflict", new, "resolved: new initial (prefer new)", False
    if prefer == "running":
        return _keep(running, new, "conflict", "resolved: running value kept (prefer running)")
    outcome, value, note, _ = _keep(
        running, new, "conflict", "changed at run time and by the new version: running kept"
    )
    return outcome, value, note, outcome == "conflict"


def _keep(running: Any, new: Any, outcome: str, note: str) -> Rule:
    """The running value fitted to the new variable's type, or a refusal saying why."""
    if new is None or type(running) is type(new):  # the common case, without a call
        return outcome, running, note, False
    try:
        value, converted = convert(running, new)
    except TypeError as exc:
        why = (
            f"type changed: {exc}; a lossless conversion is impossible (an app's "
            "migrate(old_version, state) may convert it)"
        )
        return "refused", None, why, False
    if converted:
        note = f"{note}; converted" if note else "converted"
    return outcome, value, note, False


def _fit(
    check: Check, outcome: str, value: Any, note: str, new: Any, prefer: Prefer
) -> tuple[str, Any, str]:
    """Parameters: the value must fit the new spec; prefer new resets one that does not."""
    try:
        return outcome, check(value), note
    except (TypeError, ValueError) as exc:
        if prefer == "new" and value is not new:
            why = f"running value does not fit ({exc}): reset to the new default (prefer new)"
            return outcome, check(new), why
        return "refused", None, f"running value does not fit the new version: {exc}"


def migrated(path: str, value: Any, new_initial: Any, *, check: Check | None = None) -> Decision:
    """A value the app's ``migrate()`` produced: converted to the new type or refused."""
    if new_initial is MISSING:
        why = "migrate() returned a path the new version lacks"
        return Decision(path, "dropped", None, MISSING, value, new_initial, why)
    try:
        out, converted = convert(value, new_initial)
    except TypeError as exc:
        return Decision(path, "refused", None, MISSING, value, new_initial, f"migrate(): {exc}")
    outcome, out, note = "migrated", out, "converted" if converted else ""
    if check is not None:
        outcome, out, note = _fit(check, outcome, out, note, new_initial, None)
    return Decision(path, outcome, out, MISSING, value, new_initial, note)


@dataclass
class Plan:
    """The decisions of one version change; ``ok`` says whether it may go ahead."""

    decisions: list[Decision] = field(default_factory=list)
    strict: bool = False

    def of(self, outcome: str) -> list[Decision]:
        return [d for d in self.decisions if d.outcome == outcome]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(OUTCOMES, 0)
        for d in self.decisions:
            out[d.outcome] += 1
        out["unresolved"] = sum(d.unresolved for d in self.decisions)
        return out

    def problems(self) -> list[str]:
        """Why the change must be refused: refused variables, and in strict mode conflicts."""
        out = [f"{d.path}: {d.note}" for d in self.decisions if d.outcome == "refused"]
        if self.strict:
            out += [
                f"{d.path}: unresolved conflict (old initial {d.old_initial!r}, running "
                f"{d.running!r}, new initial {d.new_initial!r}); choose with prefer new|running"
                for d in self.decisions
                if d.unresolved
            ]
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()

    def summary(self) -> dict[str, Any]:
        """JSON-able: the counts and every decision but the plain ``kept`` ones (for logs and
        the audit trail: a thousand unchanged variables say nothing an engineer needs)."""
        return {
            "counts": self.counts(),
            "strict": self.strict,
            "changes": [
                d.as_dict() for d in self.decisions if d.outcome != "kept" or "converted" in d.note
            ],
        }

    def lines(self, *, all_kept: bool = True) -> list[str]:
        """One line per variable: outcome, path, the values that decided it."""
        out = []
        for d in self.decisions:
            if d.outcome == "kept" and not all_kept and not d.note:
                continue
            out.append(_line(d))
        return out


def brief(summary: dict[str, Any], limit: int = 20) -> dict[str, Any]:
    """A plan summary cut to its first ``limit`` changes, for log lines (the audit keeps all)."""
    changes = summary.get("changes", [])
    if len(changes) <= limit:
        return summary
    return summary | {"changes": changes[:limit], "more_changes": len(changes) - limit}


def _line(d: Decision) -> str:
    label = d.outcome.replace("_", " ") + (" (unresolved)" if d.unresolved else "")
    parts = [f"{label:<22} {d.path}"]
    if d.outcome in ("kept", "migrated"):
        parts.append(f"= {d.value!r}")
    elif d.outcome in ("new_value", "conflict"):
        parts.append(
            f"= {d.value!r} (initial {d.old_initial!r} → {d.new_initial!r}, running {d.running!r})"
        )
    elif d.outcome == "added":
        parts.append(f"= {d.value!r}")
    elif d.outcome == "dropped" and d.running is not MISSING:
        parts.append(f"(was {d.running!r})")
    if d.note:
        parts.append(f"— {d.note}")
    return " ".join(parts)


def merge(
    old_initials: Mapping[str, Any],
    running: Mapping[str, Any],
    new_initials: Mapping[str, Any],
    *,
    prefer: Prefer = None,
    strict: bool = False,
    migrated_paths: Iterable[str] = (),
    checks: Mapping[str, Check] | None = None,
) -> Plan:
    """Decide every variable of ``running`` and ``new_initials`` (in the new version's order,
    dropped ones last). ``old_initials`` may lack paths (an old file): those are kept."""
    checks = checks or {}
    by_migrate = set(migrated_paths)
    decisions: list[Decision] = []
    for path, new in new_initials.items():
        value = running.get(path, MISSING)
        if path in by_migrate and value is not MISSING:
            decisions.append(migrated(path, value, new, check=checks.get(path)))
        else:
            old = old_initials.get(path, MISSING)
            decisions.append(decide(path, old, value, new, prefer=prefer, check=checks.get(path)))
    for path, value in running.items():
        if path not in new_initials:
            decisions.append(decide(path, old_initials.get(path, MISSING), value, MISSING))
    return Plan(decisions, strict=strict)


def changed_by(source: Mapping[str, Any], result: Mapping[str, Any]) -> set[str]:
    """The paths a migrate() hook created or changed (what it did not touch is merged)."""
    return {p for p, v in result.items() if p not in source or not same(v, source[p])}


def parameter_path(name: str) -> str:
    """How a parameter appears in a plan (program paths never contain a colon)."""
    return f"parameter:{name}"

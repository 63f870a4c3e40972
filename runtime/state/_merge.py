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


@dataclass(frozen=True, slots=True)
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
    if (type(a) is bool) != (type(b) is bool):
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except Exception:  # an exotic value whose == raises: treat as different
        return False


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
    base = Decision(path, "", None, old_initial, running, new_initial)
    if new_initial is MISSING:
        return _with(base, "dropped", None, "not in the new version")
    if running is MISSING:
        return _checked(_with(base, "added", new_initial), check, prefer)
    if old_initial is MISSING:
        note = "old initial value unknown (not recorded): running value kept"
        return _checked(_keep(base, "kept", note), check, prefer)
    if same_initial(old_initial, new_initial):
        return _checked(_keep(base, "kept", ""), check, prefer)
    if same(running, old_initial):
        return _checked(_with(base, "new_value", new_initial), check, prefer)
    if prefer == "new":
        return _checked(
            _with(base, "conflict", new_initial, "resolved: new initial (prefer new)"),
            check,
            prefer,
        )
    if prefer == "running":
        return _checked(
            _keep(base, "conflict", "resolved: running value kept (prefer running)"), check, prefer
        )
    kept = _keep(base, "conflict", "changed at run time and by the new version: running kept")
    if kept.outcome == "conflict":
        kept = Decision(**{**_fields(kept), "unresolved": True})
    return _checked(kept, check, prefer)


def migrated(path: str, value: Any, new_initial: Any, *, check: Check | None = None) -> Decision:
    """A value the app's ``migrate()`` produced: converted to the new type or refused."""
    base = Decision(path, "migrated", None, MISSING, value, new_initial)
    if new_initial is MISSING:
        return _with(base, "dropped", None, "migrate() returned a path the new version lacks")
    try:
        out, converted = convert(value, new_initial)
    except TypeError as exc:
        return _with(base, "refused", None, f"migrate() returned {exc}")
    decision = _with(base, "migrated", out, "converted" if converted else "")
    return _checked(decision, check, None)


def _fields(d: Decision) -> dict[str, Any]:
    return {k: getattr(d, k) for k in Decision.__slots__}


def _with(base: Decision, outcome: str, value: Any, note: str = "") -> Decision:
    return Decision(**{**_fields(base), "outcome": outcome, "value": value, "note": note})


def _keep(base: Decision, outcome: str, note: str) -> Decision:
    """The running value fitted to the new variable's type, or a refusal saying why."""
    try:
        value, converted = convert(base.running, base.new_initial)
    except TypeError as exc:
        return _with(
            base,
            "refused",
            None,
            f"type changed: {exc}; a lossless conversion is impossible (an app's "
            "migrate(old_version, state) may convert it)",
        )
    if converted:
        note = f"{note}; converted" if note else "converted"
    return _with(base, outcome, value, note)


def _checked(d: Decision, check: Check | None, prefer: Prefer) -> Decision:
    """Parameters: the value must fit the new spec; prefer new resets one that does not."""
    if check is None or d.outcome in ("dropped", "refused"):
        return d
    try:
        return Decision(**{**_fields(d), "value": check(d.value)})
    except (TypeError, ValueError) as exc:
        if prefer == "new" and d.value is not d.new_initial:
            return _with(
                d,
                d.outcome,
                check(d.new_initial),
                f"running value does not fit ({exc}): reset to the new default (prefer new)",
            )
        return _with(d, "refused", None, f"running value does not fit the new version: {exc}")


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

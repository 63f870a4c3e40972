"""The state of an online change: the merge plan, precomputed off the scan thread, applied on it.

Most variables keep their initial value from one version to the next: they are paired up at
prepare and only copied at the swap (with a lossless conversion where the type changed). The
few whose initial value the new version changes are decided at the swap, on the running
value of that very cycle (new value, or a conflict). With an app ``migrate()`` the whole
state goes through it and the merge at the swap.
"""

from __future__ import annotations

import copy
from typing import Any

from runtime.core._leaves import copy_value
from runtime.core._loader import LoadedApp
from runtime.state import _tree
from runtime.state._merge import (
    CARRIED,
    MISSING,
    Check,
    Decision,
    Plan,
    Prefer,
    changed_by,
    decide,
    merge,
    parameter_path,
    same_initial,
)

# (path, old owner, old attribute, new owner, new attribute, old initial, new initial)
Changed = tuple[str, object, str, object, str, Any, Any]


class TransferError(Exception):
    """The state cannot go over (a migrate() failure or a refused plan); ``plan`` says why."""

    def __init__(self, reason: str, plan: Plan | None = None) -> None:
        super().__init__(reason)
        self.plan = plan


class Transfer:
    """Old version's running state → the new version's instances, by the three-way merge."""

    def __init__(self, old: LoadedApp, new: LoadedApp, *, prefer: Prefer, strict: bool) -> None:
        self.old_app, self.new_app = old, new
        self.prefer, self.strict = prefer, strict
        # The app's migrate hook, if it is for the running version (it makes the swap slow).
        self.migrate = new.migrate_for(old.version)
        self.new = new.tree.leaves()  # nobody runs these yet: safe
        self.old: dict[str, _tree.Accessor] = {}
        self.pairs: list[_tree.Pair] = []
        self.changed: list[Changed] = []
        self.static: list[Decision] = []  # kept / added / dropped, decided at prepare

    def read_old(self) -> dict[str, Any]:
        """Walk the running version's instances and read their state; between cycles only."""
        self.old = self.old_app.tree.leaves()
        return _tree.read(self.old)

    def plan(self, source: dict[str, Any]) -> Plan:
        """The whole merge of ``source`` (the running state) with migrate(); nothing written."""
        old_initials = self.old_app.initials
        migrated: set[str] = set()
        migrate = self.migrate
        if migrate is not None:
            try:
                result = migrate(self.old_app.version, copy.deepcopy(source))
            except Exception as exc:
                raise TransferError(f"migrate() of the new version raised {exc!r}") from exc
            if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
                raise TransferError("migrate() must return a dict of instance path → value")
            source, migrated = result, changed_by(source, result)
        plan = merge(
            old_initials,
            source,
            self.new_app.initials,
            prefer=self.prefer,
            strict=self.strict,
            migrated_paths=migrated,
        )
        plan.decisions += self.parameters().decisions
        return plan

    def parameters(self) -> Plan:
        """Parameters: running values against the defaults of both versions, range-checked."""
        old, new = self.old_app, self.new_app
        checks: dict[str, Check] = {
            parameter_path(n): p.spec.check for n, p in new.parameters.items()
        }
        return merge(
            {parameter_path(n): v for n, v in old.parameter_defaults.items()},
            {parameter_path(n): p.value for n, p in old.parameters.items()},
            {parameter_path(n): v for n, v in new.parameter_defaults.items()},
            prefer=self.prefer,
            checks=checks,
        )

    def precompute(self, dry_run: Plan) -> None:
        """Pair the paths off the scan thread, so the swap copies values and decides few."""
        if self.migrate is not None:
            return
        old_init, new_init = self.old_app.initials, self.new_app.initials
        for d in dry_run.decisions:
            path = d.path
            if path not in self.old or path not in self.new:
                if not path.startswith("parameter:"):
                    self.static.append(d)  # added or dropped: nothing to copy
                continue
            o_owner, o_attr = self.old[path]
            n_owner, n_attr = self.new[path]
            oi, ni = old_init.get(path, MISSING), new_init.get(path, MISSING)
            if oi is MISSING or same_initial(oi, ni):
                like = getattr(n_owner, n_attr)
                self.pairs.append((path, o_owner, o_attr, n_owner, n_attr, like))
                self.static.append(d)
            else:
                self.changed.append((path, o_owner, o_attr, n_owner, n_attr, oi, ni))

    def apply(self) -> Plan:
        """On the scan thread between cycles: write the new instances, return the plan."""
        if self.migrate is not None:  # the hook sees the state of this very cycle
            plan = self.plan(self.read_old())
            _write(plan, self.new)
            return plan
        decisions = [_refused(entry) for entry in _tree.copy_pairs(self.pairs)]
        for path, o_owner, o_attr, n_owner, n_attr, oi, ni in self.changed:
            d = decide(path, oi, getattr(o_owner, o_attr), ni, prefer=self.prefer)
            if d.outcome in CARRIED:
                setattr(n_owner, n_attr, copy_value(d.value))
            decisions.append(d)
        plan = Plan(self.static + decisions, strict=self.strict)
        plan.decisions += self.parameters().decisions
        return plan


def _refused(entry: str) -> Decision:
    path, _, why = entry.partition(": ")
    return Decision(path, "refused", note=f"type changed: {why}")


def _write(plan: Plan, targets: dict[str, _tree.Accessor]) -> None:
    for d in plan.decisions:
        if d.outcome in CARRIED and d.path in targets:
            owner, attr = targets[d.path]
            setattr(owner, attr, copy_value(d.value))


def parameter_values(plan: Plan) -> dict[str, Any]:
    """Parameter name → the value the new version starts with (carried decisions only)."""
    return {
        d.path.split(":", 1)[1]: d.value
        for d in plan.decisions
        if d.outcome in CARRIED and d.path.startswith("parameter:")
    }

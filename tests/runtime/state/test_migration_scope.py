"""``@migration(below=…)``: a hook for old layouts only keeps later changes on the fast path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime import load_app, migration
from runtime.core._migrate import Migrate, applies
from runtime.state import RetainStore, change_online, take_snapshot
from runtime.state.snapshot import plan_snapshot
from tests.conftest import MakeApp
from tests.runtime.state.helpers import STATE_LOGIC, Rig, manifest

# 2.x renamed main.total to main.sum; its hook raises for anything but a 1.x state, so a call
# where none is due fails the test.
RENAMED = STATE_LOGIC.replace('"total": 0.0', '"sum": 0.0').replace("self.total", "self.sum")
HOOK = """
from runtime import migration

@migration(below="2.0.0")
def migrate(old_version, state):
    if not old_version.startswith("1."):
        raise AssertionError(f"migrate called for {old_version}")
    state["main.sum"] = state.pop("main.total")
    return state
"""


def _noop() -> Migrate:
    def migrate(old_version: str, state: dict[str, Any]) -> dict[str, Any]:
        return state

    return migrate


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        ("1.9.9", True),
        ("2.0.0-rc.1", True),  # a pre-release comes before its release
        ("2.0.0", False),
        ("2.0.0+build.7", False),
        ("10.0.0", False),
        ("not-a-version", True),  # nothing to compare: the hook decides
    ],
)
def test_a_declared_hook_applies_below_its_bound_only(old: str, expected: bool) -> None:
    assert applies(migration(below="2.0.0")(_noop()), old) is expected


def test_an_undeclared_hook_always_applies_and_a_bad_bound_is_refused() -> None:
    assert applies(_noop(), "99.0.0") and not applies(None, "1.0.0")
    with pytest.raises(ValueError, match=r"migration\(below='2\.0'\): not a semantic version"):
        migration(below="2.0")


def test_an_online_change_from_an_old_layout_migrates_and_later_ones_take_the_fast_path(
    make_app: MakeApp,
) -> None:
    rig = Rig(make_app(manifest("1.0.0"), STATE_LOGIC))
    rig.run_ms(300)
    total = rig.program().total
    first = change_online(rig.engine, make_app(manifest("2.0.0"), RENAMED + HOOK))
    assert first.migrated and rig.program().sum == total
    rig.run_ms(600)
    # 2.0.0 → 2.0.1: the hook (it would raise) is not called, the pairs are precomputed
    second = change_online(rig.engine, make_app(manifest("2.0.1"), RENAMED + HOOK))
    assert not second.migrated and second.status == "trial"
    rig.run_ms(900)
    assert second.status == "committed" and rig.program().sum > total


def test_warm_starts_and_snapshots_of_a_later_version_skip_the_hook(
    make_app: MakeApp, tmp_path: Path
) -> None:
    rig = Rig(make_app(manifest("2.0.0", retain={"variables": ["main.sum"]}), RENAMED))
    store = RetainStore(tmp_path / "r.retain", rig.app)
    store.load()
    store.attach(rig.engine)
    rig.run_ms(300)
    snap = take_snapshot(rig.engine)
    rig.engine.close()
    store.close()
    newer = load_app(
        make_app(manifest("2.1.0", retain={"variables": ["main.sum"]}), RENAMED + HOOK)
    )
    report = RetainStore(tmp_path / "r.retain", newer).load()  # the hook would raise
    assert report.started == "warm" and report.plan["counts"]["migrated"] == 0
    assert newer.programs["main"].sum == snap["programs"]["main"]["main.sum"]  # type: ignore[attr-defined]
    assert plan_snapshot(newer, snap).ok

"""The public surface of runtime.state is exactly what the CLI and MQTT commands use."""

from __future__ import annotations

import inspect

import runtime.state as state


def test_exports() -> None:
    assert sorted(state.__all__) == [
        "ChangeReport",
        "Decision",
        "OnlineChangeError",
        "Plan",
        "PreparedChange",
        "RetainError",
        "RetainLoadReport",
        "RetainStore",
        "SnapshotError",
        "apply_change",
        "between_cycles",
        "change_online",
        "claim_retain_file",
        "prepare_change",
        "release_retain_file",
        "restore_snapshot",
        "take_snapshot",
    ]
    for name in state.__all__:
        assert getattr(state, name).__doc__, name


def test_options_are_keyword_only() -> None:
    load = inspect.signature(state.RetainStore.load).parameters
    assert load["mode"].kind is inspect.Parameter.KEYWORD_ONLY
    assert load["on_bad"].kind is inspect.Parameter.KEYWORD_ONLY
    for fn, names in (
        (state.prepare_change, ("seed", "prefer", "strict")),
        (state.change_online, ("seed", "prefer", "strict")),
        (state.restore_snapshot, ("prefer", "strict")),
        (state.RetainStore.load, ("prefer", "strict", "now_ns")),
    ):
        params = inspect.signature(fn).parameters
        for name in names:
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, (fn, name)

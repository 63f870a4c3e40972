"""State that survives: retain files, snapshots, online change, and the merge of versions."""

from runtime.state._merge import Decision, Plan
from runtime.state._oncycle import between_cycles
from runtime.state._owner import claim_retain_file, release_retain_file
from runtime.state._trial import ChangeReport
from runtime.state.online_change import (
    OnlineChangeError,
    PreparedChange,
    apply_change,
    change_online,
    prepare_change,
)
from runtime.state.retain import RetainError, RetainLoadReport, RetainStore
from runtime.state.snapshot import SnapshotError, restore_snapshot, take_snapshot

__all__ = [
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

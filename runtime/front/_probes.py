"""What every front-end reads of an app besides its points: ALARM blocks and PHASE probes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.blocks import ALARM, PHASE

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["PhaseProbe", "engine_alarms", "engine_phases", "follow_app"]


class PhaseProbe:
    """What is published of a PHASE block: its state and its program's ``step`` variable.

    An ISA-88 phase's state says where the procedure is; the step inside RUNNING is the
    program's own business, by convention a program variable named ``step`` (None if absent).
    """

    __slots__ = ("block", "program")

    def __init__(self, block: Any, program: Any) -> None:
        self.block, self.program = block, program

    @property
    def state(self) -> Any:
        return self.block.STATE_NAME

    @property
    def step(self) -> Any:
        return getattr(self.program, "step", None)


def follow_app(
    app: Any,
    alarms: list[tuple[str, Any]],
    params: list[tuple[str, Any]],
    phases: list[tuple[str, Any]],
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The same paths and names, at the same indexes (the bridge publishes by index), bound to
    the instances of ``app`` (a new version after an online change). One the new version no
    longer has keeps its last instance; one it adds is published after the next restart."""
    tree = app.tree
    by_alarm = dict(tree.of_type(ALARM))
    by_phase = dict(tree.of_type(PHASE))
    return (
        [(p, by_alarm.get(p, b)) for p, b in alarms],
        [(n, app.parameters.get(n, prm)) for n, prm in params],
        [
            (p, PhaseProbe(by_phase[p], tree.program_of(p)) if p in by_phase else probe)
            for p, probe in phases
        ],
    )


def engine_alarms(engine: ScanEngine) -> list[tuple[str, ALARM]]:
    """Every ALARM block of the app with its instance path ``program.path``."""
    return engine.app.tree.of_type(ALARM)


def engine_phases(engine: ScanEngine) -> list[tuple[str, PhaseProbe]]:
    """Every PHASE block of the app with its instance path, probed with its program's step."""
    tree = engine.app.tree
    return [(path, PhaseProbe(block, tree.program_of(path))) for path, block in tree.of_type(PHASE)]

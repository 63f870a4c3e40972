"""An online change during handover probation keeps the handover's program guard.

Before the engine held a list of guards, the handover chained one ``program_guard`` slot by
hand and an online change refused to start while it was set, or, had it started, dropped the
handover guard when its trial ended: a program fault in probation then wrote safe values
over the plant instead of holding the outputs for the old instance to take back.
"""

from __future__ import annotations

from typing import Any

from runtime import RuntimeState
from runtime.state import change_online, take_snapshot
from runtime.state._handover import HandoverAgent
from tests.conftest import MakeApp
from tests.runtime.state.helpers import STATE_LOGIC, Rig, state_app

# Raises when the operator sets gain above 9: a fault we can trigger at a chosen cycle.
TRIGGERED = STATE_LOGIC.replace(
    "        self.count += 1\n",
    "        self.count += 1\n"
    "        if self.gain.value > 9:\n"
    "            raise RuntimeError('boom')\n",
)
FIRST_CYCLE_BUG = STATE_LOGIC.replace(
    "        self.count += 1\n", "        self.count += 1\n        raise RuntimeError('v2 bug')\n"
)


class FakeOwner:
    """An Ownable driver's ownership side, recording what the handover asked of it."""

    def __init__(self) -> None:
        self.holds: list[bool] = []
        self.epoch: int | None = None

    def set_standby(self) -> None:
        pass

    def claim(self, epoch: int, timeout: float = 1.0) -> bool:
        self.epoch = epoch
        return True

    def hold(self, *, last_write: bool = True) -> None:
        self.holds.append(last_write)

    def unhold(self) -> None:
        pass

    @property
    def superseded(self) -> bool:
        return False

    @property
    def max_epoch_seen(self) -> int | None:
        return self.epoch


def _in_probation(rig: Rig, cycles: int = 100) -> tuple[HandoverAgent, FakeOwner]:
    owner = FakeOwner()
    agent = HandoverAgent(rig.engine, [owner], standby=True, probation_cycles=cycles)  # type: ignore[list-item]
    rig.run_ms(50)
    assert rig.program().count == 0  # a standby scans without programs
    release: dict[str, Any] = {"snapshot": take_snapshot(rig.engine), "epoch_ns": 0}
    agent.claim(release, 2)
    rig.run_ms(100)
    assert agent.mode == "probation" and rig.program().count == 5
    return agent, owner


def test_online_change_in_probation_keeps_the_handover_guard(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app, logic=TRIGGERED))
    agent, owner = _in_probation(rig)
    report = change_online(rig.engine, state_app(make_app, "1.0.1", TRIGGERED))
    assert report.status == "trial", report.reason  # not refused by the handover's guard
    rig.run_ms(150)
    assert report.status == "committed" and rig.version == "1.0.1"
    assert agent.mode == "probation" and len(rig.engine.program_guards) == 1
    rig.engine.app.parameters["gain"].value = 9.5
    rig.run_ms(170)
    # The fault in probation went through the handover's guard: outputs held, not safe.
    assert rig.engine.state is RuntimeState.FAULT and "boom" in rig.engine.fault_reason
    assert agent.mode == "failed" and "raised in probation" in agent.reason
    assert owner.holds == [False]
    assert rig.engine.program_guards == ()


def test_online_change_fallback_in_probation_is_not_a_probation_failure(
    make_app: MakeApp,
) -> None:
    rig = Rig(state_app(make_app))
    agent, owner = _in_probation(rig)
    report = change_online(rig.engine, state_app(make_app, "1.1.0", FIRST_CYCLE_BUG))
    rig.run_ms(150)
    # The trial's guard (newest) handled it: the old version re-ran the cycle, no fault.
    assert report.status == "fell_back" and rig.version == "1.0.0"
    assert rig.engine.state is RuntimeState.RUN and agent.mode == "probation"
    assert owner.holds == [] and len(rig.engine.program_guards) == 1
    assert rig.program().count == 10  # every cycle since the claim ran the old version


def test_probation_ends_and_removes_its_guard(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    agent, _ = _in_probation(rig, cycles=8)
    rig.run_ms(200)
    assert agent.mode == "active" and rig.engine.program_guards == ()

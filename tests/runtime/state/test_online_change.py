"""Online change on the virtual clock: state by path, conversions, migrate(), fallback, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from runtime import RuntimeState
from runtime.state import OnlineChangeError, apply_change, change_online, prepare_change
from tests.conftest import MakeApp
from tests.runtime.state.helpers import STATE_LOGIC, Rig, manifest, state_app


def _variant(find: str, replace: str, logic: str = STATE_LOGIC) -> str:
    assert find in logic
    return logic.replace(find, replace)


def test_version_bump_continues_exactly_like_an_uninterrupted_run(make_app: MakeApp) -> None:
    v1 = state_app(make_app)
    v2 = state_app(make_app, version="1.0.1")
    straight = Rig(v1)
    straight.run_ms(2000)
    rig = Rig(v1)
    rig.run_ms(1000)
    with capture_logs() as logs:
        report = change_online(rig.engine, v2)
        rig.run_ms(2000)
    assert report.status == "committed" and report.wait(0)
    assert rig.version == "1.0.1"
    assert repr(rig.after(0)) == repr(straight.after(0))
    assert {r[5] for r in rig.trace if r[0] >= 1_000_000_000} == {"1.0.1"}
    assert report.counts["new"] == report.counts["dropped"] == report.counts["refused"] == 0
    assert report.counts["matched"] > 30  # VARS + every block variable, PID included
    applied = [e for e in logs if e["event"] == "online_change_applied"]
    assert applied and applied[0]["old_version"] == "1.0.0"
    assert applied[0]["new_version"] == "1.0.1" and applied[0]["plan"]["counts"]["kept"] > 30
    assert any(e["event"] == "online_change_committed" for e in logs)


def test_state_is_carried_by_path_new_vars_initial_removed_dropped(make_app: MakeApp) -> None:
    v2_logic = _variant(
        'VARS = {"count": 0, "total": 0.0, "label": "batch"}',
        'VARS = {"count": 0, "extra": 7}',
    ).replace("self.total += self.x.value", "self.extra += 1")
    rig = Rig(state_app(make_app))
    rig.run_ms(500)
    old = rig.program()
    count, acc_q = old.count, old.acc.Q
    report = change_online(rig.engine, state_app(make_app, "1.1.0", v2_logic))
    assert report.status == "trial"
    new = rig.program()
    assert new is not old
    assert (new.count, new.acc.Q, new.extra) == (count, acc_q, 7)
    rig.run_ms(510)
    assert report.status == "committed"
    assert (new.count, new.extra) == (count + 1, 8)
    assert report.new == ["main.extra"]
    assert sorted(report.dropped) == ["main.label", "main.total"]


def test_int_to_float_is_converted(make_app: MakeApp) -> None:
    v2_logic = _variant('"count": 0,', '"count": 0.0,')
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    report = change_online(rig.engine, state_app(make_app, "1.1.0", v2_logic))
    assert report.converted == ["main.count"]
    assert rig.program().count == 10.0 and isinstance(rig.program().count, float)


@pytest.mark.parametrize(
    ("find", "replace", "path", "what"),
    [
        ('"count": 0,', '"count": False,', "main.count", "int 10 cannot become bool"),
        ('"total": 0.0,', '"total": False,', "main.total", "cannot become bool"),
    ],
)
def test_unsafe_type_change_is_refused_and_old_keeps_running(
    make_app: MakeApp, find: str, replace: str, path: str, what: str
) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    with pytest.raises(OnlineChangeError, match="state merge refuses 1 variable") as err:
        prepare_change(rig.engine, state_app(make_app, "1.1.0", _variant(find, replace)))
    assert path in str(err.value) and what in str(err.value)
    assert err.value.report.status == "refused"
    rig.run_ms(200)
    assert rig.version == "1.0.0" and rig.program().count == 20


MIGRATE = """

def migrate(old_version, state):
    assert old_version == "1.0.0"
    state["main.sum"] = state.pop("main.total")
    state["main.count"] = state["main.count"] * 100
    return state
"""


def test_migrate_function_is_used(make_app: MakeApp) -> None:
    v2_logic = _variant('"total": 0.0', '"sum": 0.0').replace("self.total", "self.sum") + MIGRATE
    rig = Rig(state_app(make_app))
    rig.run_ms(300)
    total = rig.program().total
    assert total != 0.0
    report = change_online(rig.engine, state_app(make_app, "2.0.0", v2_logic))
    assert report.migrated
    assert rig.program().sum == total and rig.program().count == 3000
    assert "main.sum" not in report.new and "main.total" not in report.dropped


def test_migrate_that_raises_is_refused_and_old_keeps_running(make_app: MakeApp) -> None:
    v2_logic = STATE_LOGIC + "\n\ndef migrate(old_version, state):\n    raise KeyError('gone')\n"
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    with pytest.raises(OnlineChangeError, match=r"migrate\(\) of the new version raised KeyError"):
        change_online(rig.engine, state_app(make_app, "2.0.0", v2_logic))
    rig.run_ms(300)
    assert rig.version == "1.0.0" and rig.program().count == 30
    assert rig.engine.state is RuntimeState.RUN


FAILING = _variant("self.count += 1\n", "self.count += 1\n        raise RuntimeError('v2 bug')\n")


def test_first_cycle_exception_falls_back_to_the_old_version_and_state(
    make_app: MakeApp,
) -> None:
    v1 = state_app(make_app)
    straight = Rig(v1)
    straight.run_ms(1000)
    rig = Rig(v1)
    rig.run_ms(500)
    old = rig.program()
    before = (old.count, old.pid.I, old.acc.Q)
    with capture_logs() as logs:
        report = change_online(rig.engine, state_app(make_app, "1.1.0", FAILING))
        assert report.status == "trial"
        rig.run_ms(1000)
    assert report.status == "fell_back" and report.wait(0)
    assert "RuntimeError: v2 bug" in report.reason and "1.0.0 continues" in report.reason
    assert rig.engine.state is RuntimeState.RUN and rig.engine.fault_reason == ""
    assert rig.version == "1.0.0" and rig.program() is old
    assert rig.engine.tasks[0].stats.faults == 0
    # the old version re-ran the failed cycle from its pre-swap state: nothing is lost, the
    # published outputs are the old version's, and the run equals an uninterrupted one
    assert old.count == 100 and before[0] == 50
    assert repr(rig.after(0)) == repr(straight.after(0))
    assert any(e["event"] == "online_change_fallback" for e in logs)


def test_exception_after_the_first_cycle_faults_as_usual(make_app: MakeApp) -> None:
    late = _variant("self.count += 1\n", "self.count += 1\n        assert self.count < 53\n")
    rig = Rig(state_app(make_app))
    rig.run_ms(500)
    report = change_online(rig.engine, state_app(make_app, "1.1.0", late))
    rig.run_ms(600)
    assert report.status == "committed"
    assert rig.engine.state is RuntimeState.FAULT and "AssertionError" in rig.engine.fault_reason


def test_change_refused_in_fault(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    prepared = prepare_change(rig.engine, state_app(make_app, "1.0.1"))
    rig.engine.fault("sensor broke")
    with pytest.raises(OnlineChangeError, match=r"FAULT \(sensor broke\)"):
        apply_change(rig.engine, prepared)
    with pytest.raises(OnlineChangeError, match="FAULT"):
        prepare_change(rig.engine, state_app(make_app, "1.0.2"))
    assert rig.version == "1.0.0"


def test_change_in_stop_is_judged_on_the_first_run_cycle(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    rig.engine.stop()
    report = change_online(rig.engine, state_app(make_app, "1.0.1", FAILING))
    rig.run_ms(200)
    assert report.status == "trial"  # nothing ran yet in STOP
    rig.engine.start()
    rig.run_ms(210)
    assert report.status == "fell_back" and rig.version == "1.0.0"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"bogus": 1}, r"app\.yaml: invalid app manifest: at bogus: unknown key"),
        (
            {"tasks": [{"name": "fast", "period_ms": 10, "priority": 3, "programs": ["main"]}]},
            "task 'fast' changes priority",
        ),
        ({"tasks": [{"name": "slow", "period_ms": 10, "programs": ["main"]}]}, "tasks"),
        ({"name": "otherapp"}, "app name 'otherapp'"),
        ({"retain": {"variables": ["main.nothing"]}}, r"retain\.variables\.0: 'main\.nothing'"),
    ],
)
def test_invalid_or_incompatible_new_version_is_refused(
    make_app: MakeApp, overrides: dict[str, Any], reason: str
) -> None:
    rig = Rig(state_app(make_app))
    rig.run_ms(100)
    new_dir = make_app(manifest("1.1.0", **overrides), STATE_LOGIC)
    with pytest.raises(OnlineChangeError, match=reason):
        prepare_change(rig.engine, new_dir)
    rig.run_ms(200)
    assert rig.version == "1.0.0" and rig.program().count == 20


def test_changed_points_are_refused(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    points = manifest()["points"]
    points[1] = points[1] | {"safe": 0.0}
    with pytest.raises(OnlineChangeError, match=r"point 'Y' changes safe"):
        prepare_change(rig.engine, make_app(manifest("1.1.0", points=points), STATE_LOGIC))


def test_a_prepared_change_applies_once(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    prepared = prepare_change(rig.engine, state_app(make_app, "1.0.1"))
    apply_change(rig.engine, prepared)
    rig.run_ms(20)
    with pytest.raises(OnlineChangeError, match="stale"):
        apply_change(rig.engine, prepared)


def test_parameter_values_carry_over(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    rig.engine.app.parameters["gain"].set(4.5)
    change_online(rig.engine, state_app(make_app, "1.0.1"))
    assert rig.engine.app.parameters["gain"].value == 4.5
    narrower = [{"name": "gain", "type": "LREAL", "default": 2.0, "min": 0, "max": 3}]
    with pytest.raises(OnlineChangeError, match=r"4\.5 is above max 3"):
        prepare_change(rig.engine, make_app(manifest("1.0.2", parameters=narrower), STATE_LOGIC))


TWO_TASK_LOGIC = """
from runtime import Program

class A(Program):
    VARS = {"count": 0}

    def __init__(self, app):
        super().__init__(app)
        self.y = app.point("Y")

    def execute(self, ctx):
        self.count += 1
        self.y.value = float(self.count)

class B(Program):
    VARS = {"count": 0}

    def execute(self, ctx):
        self.count += 1
"""


def _two_task_app(make_app: MakeApp, version: str, logic: str = TWO_TASK_LOGIC) -> Any:
    return make_app(
        manifest(
            version,
            programs=[{"name": "a", "entry": "logic:A"}, {"name": "b", "entry": "logic:B"}],
            tasks=[
                {"name": "fast", "period_ms": 10, "programs": ["a"]},
                {"name": "slow", "period_ms": 30, "programs": ["b"]},
            ],
        ),
        logic,
    )


def test_multi_task_change_commits_once_every_task_ran(make_app: MakeApp) -> None:
    rig = Rig(_two_task_app(make_app, "1.0.0"))
    rig.run_ms(95)  # last cycles: fast at 90 ms, slow at 90 ms
    report = change_online(rig.engine, _two_task_app(make_app, "1.0.1"))
    rig.run_ms(115)  # fast ran at 100 and 110, slow not yet
    assert report.status == "trial"
    rig.run_ms(125)  # slow ran at 120
    assert report.status == "committed"
    programs = rig.engine.app.programs
    assert (programs["a"].count, programs["b"].count) == (13, 5)


def test_multi_task_fallback_when_the_slow_task_raises(make_app: MakeApp) -> None:
    failing = TWO_TASK_LOGIC[: TWO_TASK_LOGIC.rindex("self.count += 1")] + "raise ValueError('b')\n"
    rig = Rig(_two_task_app(make_app, "1.0.0"))
    rig.run_ms(95)
    old = dict(rig.engine.app.programs)
    report = change_online(rig.engine, _two_task_app(make_app, "1.1.0", failing))
    rig.run_ms(200)
    assert report.status == "fell_back" and "program 'b'" in report.reason
    assert rig.engine.app.programs == old and rig.version == "1.0.0"
    # b re-ran its failed cycle (all 7 counted); a missed the fast cycles at 100, 110 and
    # 120 ms that the new version ran before b's first new cycle raised (20 - 3)
    assert (old["a"].count, old["b"].count) == (17, 7)
    assert rig.engine.state is RuntimeState.RUN


def test_refusing_a_second_apply_keeps_the_first_report(make_app: MakeApp) -> None:
    rig = Rig(state_app(make_app))
    prepared = prepare_change(rig.engine, state_app(make_app, "1.0.1"))
    report = apply_change(rig.engine, prepared)
    rig.run_ms(20)
    with pytest.raises(OnlineChangeError):
        apply_change(rig.engine, prepared)
    assert report.status == "committed" and rig.version == "1.0.1"

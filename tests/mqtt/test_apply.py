"""apply_command without a transport: what the CLI would reuse."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from runtime import ScanEngine, VirtualClock, load_app
from runtime.ops._commands import LifecycleCommand, SetParameterCommand, apply_command
from tests.conftest import MakeApp
from tests.mqtt.conftest import APP_LOGIC, app_manifest

NOW = datetime.now(UTC)  # apply_command does not judge ts; the command path does


def test_command_the_scan_never_took_is_withdrawn_not_run_later(make_app: MakeApp) -> None:
    engine = ScanEngine(load_app(make_app(app_manifest(), APP_LOGIC)), clock=VirtualClock())
    engine.start()
    cmd = SetParameterCommand(id="1", ts=NOW, cmd="set_parameter", user="u", name="gain", value=3.0)
    resp = apply_command(engine, cmd, timeout_s=0.05)  # nobody runs the scan
    assert resp.status == "refused" and "did not take the command" in resp.reason
    engine.run_until(50_000_000)
    assert engine.app.parameters["gain"].value == 2.0


def test_apply_on_a_running_engine(make_app: MakeApp) -> None:
    engine = ScanEngine(load_app(make_app(app_manifest(), APP_LOGIC)))
    engine.start()
    engine.start_thread()
    try:
        stop = apply_command(engine, LifecycleCommand(id=7, ts=NOW, cmd="stop", user="u"))
        assert (stop.id, stop.status, stop.old, stop.new) == (7, "accepted", "RUN", "STOP")
    finally:
        engine.request_stop()
        engine.join(5)
        engine.close()


def test_on_applied_reads_the_commands_own_outcome_on_the_scan_thread(make_app: MakeApp) -> None:
    """The front-ends' read-after-write rests on it: the change_seq a command ran at and the
    value it set, read before any later cycle or command; nothing for a refusal."""
    engine = ScanEngine(load_app(make_app(app_manifest(), APP_LOGIC)))
    engine.start()
    engine.start_thread()
    seen: list[tuple[int, float, bool]] = []

    def applied(eng: ScanEngine) -> None:
        on_scan = eng.scan_thread_id == threading.get_native_id()
        seen.append((eng.change_seq, eng.app.parameters["gain"].value, on_scan))

    def set_gain(cmd_id: str, value: float) -> str:
        cmd = SetParameterCommand(
            id=cmd_id, ts=NOW, cmd="set_parameter", user="u", name="gain", value=value
        )
        return apply_command(engine, cmd, on_applied=applied).status

    try:
        before = engine.change_seq
        assert set_gain("a", 4.5) == "accepted"
        assert set_gain("b", 11.0) == "refused"  # above max: never ran, nothing to read
        assert set_gain("c", 5.5) == "accepted"
        assert seen[0] == (before + 1, 4.5, True)
        assert seen[1][1:] == (5.5, True) and seen[1][0] > seen[0][0]
        assert len(seen) == 2
    finally:
        engine.request_stop()
        engine.join(5)
        engine.close()

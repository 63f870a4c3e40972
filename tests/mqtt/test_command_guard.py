"""The command path's guards without a broker: single use, freshness, rates, flood accounting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime import ScanEngine
from runtime.ops._access import AccessConfig, CommandPolicy
from runtime.ops._audit import AuditLog
from runtime.ops._command_guard import SeenIds, SeenIdsError
from runtime.ops._command_handler import CommandHandler
from tests.mqtt.conftest import cmd, now_ts


class Clock:
    """Wall and monotonic time the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1_900_000_000.0

    def wall(self) -> float:
        return self.t

    def mono(self) -> float:
        return self.t - 1_800_000_000.0


def _handler(
    engine: ScanEngine,
    access: AccessConfig,
    tmp_path: Path,
    clock: Clock | None = None,
    **policy: Any,
) -> CommandHandler:
    if policy:
        access = access.model_copy(update={"commands": CommandPolicy(**policy)})
    audit = AuditLog(tmp_path / "audit.jsonl", fsync=False)
    extra: dict[str, Any] = {"wall": clock.wall, "mono": clock.mono} if clock else {}
    return CommandHandler(
        engine,
        access=access,
        audit=audit,
        seen_path=tmp_path / "ids.seen",
        source="test",
        **extra,
    )


def _send(handler: CommandHandler, body: dict[str, Any], **kw: Any) -> Any:
    return handler.handle_message(json.dumps(body).encode(), **kw)


def _audited(tmp_path: Path, event: str = "command") -> list[dict[str, Any]]:
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def test_an_id_is_used_once_even_with_another_value_and_after_a_restart(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    handler = _handler(engine, access, tmp_path)
    body = cmd("set_parameter", name="gain", value=3.0)
    assert _send(handler, body).status == "accepted"
    again = _send(handler, body)
    assert again.status == "refused" and "already used" in again.reason, again
    changed = _send(handler, body | {"value": 7.0})
    assert changed.status == "refused" and "already used" in changed.reason
    assert engine.app.parameters["gain"].value == 3.0
    restarted = _handler(engine, access, tmp_path)  # a new process: ids come from disk
    assert _send(restarted, body | {"value": 9.0}).status == "refused"
    assert engine.app.parameters["gain"].value == 3.0
    statuses = [(r["status"], "already used" in r["reason"]) for r in _audited(tmp_path)]
    assert statuses == [("accepted", False)] + [("refused", True)] * 3


def test_stale_future_and_missing_timestamps_are_refused(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    handler = _handler(engine, access, tmp_path)
    old = _send(handler, cmd("set_parameter", name="gain", value=4.0, ts=now_ts(-120)))
    assert old.status == "refused" and "stale" in old.reason and "max_age_s 30" in old.reason
    ahead = _send(handler, cmd("set_parameter", name="gain", value=4.0, ts=now_ts(60)))
    assert ahead.status == "refused" and "in the future" in ahead.reason
    body = cmd("set_parameter", name="gain", value=4.0)
    del body["ts"]
    missing = _send(handler, body)
    assert missing.status == "refused" and "ts: Field required" in missing.reason
    naive = _send(handler, cmd("set_parameter", name="gain", value=4.0, ts="2030-01-01T00:00"))
    assert naive.status == "refused" and "timezone" in naive.reason
    unix = _send(handler, cmd("set_parameter", name="gain", value=4.0, ts=handler.guard.wall()))
    assert unix.status == "accepted"  # Unix seconds are a timestamp too
    reasons = [r["reason"] for r in _audited(tmp_path)]
    assert len(reasons) == 3 and "stale" in reasons[0] and "future" in reasons[1]


def test_a_retained_command_is_refused_and_never_runs(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    handler = _handler(engine, access, tmp_path)
    resp = _send(handler, cmd("set_parameter", name="gain", value=6.0), retain=True, topic="p/cmd")
    assert resp.status == "refused" and "retained" in resp.reason and "-t p/cmd" in resp.reason
    assert engine.app.parameters["gain"].value == 2.0
    assert _audited(tmp_path)[0]["source"] == "p/cmd"


def test_per_user_and_global_rates(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    clock = Clock()
    handler = _handler(
        engine, access, tmp_path, clock, user_rate=2, user_burst=3, global_rate=4, global_burst=5
    )

    def send(user: str) -> Any:
        return _send(handler, cmd("set_parameter", user=user, name="gain", value=1.5, ts=clock.t))

    assert [send("olga").status for _ in range(3)] == ["accepted"] * 3
    assert "'olga' is over 2 commands/s" in send("olga").reason
    assert send("erik").status == "accepted" and send("erik").status == "accepted"
    assert "over 4/s in all" in send("erik").reason  # 5 taken together: the global burst
    clock.t += 1.0  # refills 2 per user, 4 in all
    vera = send("vera")
    assert vera.status == "refused" and "needs role 'operator'" in vera.reason  # not a rate
    assert handler.guard.counts["rate_limited"] == 2
    audited = _audited(tmp_path)
    assert len(audited) == 6 and not any(" over " in r["reason"] for r in audited)


def test_an_unauthenticated_flood_is_counted_not_written_one_by_one(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    handler = _handler(engine, access, tmp_path, refusal_answer_rate=5, refusal_answer_burst=10)
    size0 = 0
    answered = 0
    for i in range(2000):
        payload = b"\x00junk" if i % 2 else json.dumps(cmd("stop", user="mallory")).encode()
        answered += handler.handle_message(payload) is not None
    audit = tmp_path / "audit.jsonl"
    size0 = audit.stat().st_size if audit.exists() else 0
    assert size0 == 0  # not one record (nor the key's trail_start) for 2000 refusals
    assert 10 <= answered < 30  # the burst, plus what the rate refilled meanwhile
    ok = _send(handler, cmd("set_parameter", name="gain", value=5.0))
    assert ok.status == "accepted"
    summary = handler.guard.flush()
    assert summary is not None
    assert summary["counts"]["malformed"] == 1000
    assert summary["counts"]["unauthenticated"] == 1000
    assert summary["counts"]["unanswered"] == 2000 - answered
    assert summary["claimed_users"] == {"mallory": 1000}
    records = _audited(tmp_path, "command_refusals")
    assert len(records) == 1 and records[0]["counts"]["unauthenticated"] == 1000
    assert handler.guard.flush() is None  # nothing new, nothing written
    assert handler.handle_payload(b"junk").status == "refused"  # always answered this way


def test_used_ids_expire_stay_bounded_and_the_file_is_compacted(tmp_path: Path) -> None:
    path = tmp_path / "ids.seen"
    seen = SeenIds(path, max_ids=100, fsync=False)
    now = 1000.0
    for i in range(100):
        assert seen.use(f"k{i}", now=now, window_s=40) is None
    assert seen.use("k5", now=now + 1, window_s=40) == now
    with pytest.raises(SeenIdsError, match="max_ids 100"):
        seen.use("one-more", now=now + 1, window_s=40)
    now += 40  # the first hundred expire
    for j in range(3000):  # ids keep coming, old ones expire: memory and file stay bounded
        now += 1.0
        seen.use(f"n{j}", now=now, window_s=40)
        assert len(seen) <= 41
    assert len(path.read_text().splitlines()) < 2 * 41 + 1000 + 2
    reloaded = SeenIds(path, max_ids=100)
    reloaded.load(now)
    assert len(reloaded) == 40 and reloaded.use(f"n{2999}", now=now, window_s=40) == now


def test_a_full_id_store_refuses_rather_than_forgets(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    handler = _handler(engine, access, tmp_path, max_ids=100, user_burst=1000, global_burst=1000)
    for i in range(100):
        body = cmd("set_parameter", name="gain", value=1.0 + i % 5, id=f"s{i}")
        assert _send(handler, body).status == "accepted"
    full = _send(handler, cmd("set_parameter", name="gain", value=0.5))
    assert full.status == "refused" and "replay protection unavailable" in full.reason


def test_no_record_no_action_when_the_trail_cannot_be_written(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    handler = _handler(engine, access, tmp_path)
    assert _send(handler, cmd("set_parameter", name="gain", value=3.0)).status == "accepted"
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    (tmp_path / "audit.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # truncated
    resp = _send(handler, cmd("set_parameter", name="gain", value=8.0))
    assert resp.status == "refused" and "audit trail cannot be written" in resp.reason
    assert engine.app.parameters["gain"].value == 3.0


def test_unreadable_used_ids_refuse_every_command_rather_than_guess(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    (tmp_path / "ids.seen").mkdir()  # not a file: what ran before the restart is unknown
    handler = _handler(engine, access, tmp_path)
    resp = _send(handler, cmd("set_parameter", name="gain", value=3.0))
    assert resp.status == "refused" and "cannot read the used command ids" in resp.reason
    assert engine.app.parameters["gain"].value == 2.0

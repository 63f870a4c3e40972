"""Per-user credentials on the command path and `vplc users` from the shell."""

from __future__ import annotations

import json
import pickle
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.host.cli import main
from runtime.ops._access import AccessDeniedError, hash_token, load_access_config
from runtime.ops._audit import AuditLog
from runtime.ops._command_handler import CommandHandler
from runtime.ops._commands import CommandResponse
from runtime.ops._users import PasswordPolicy, UserStore

T0 = time.time()
PW = "Correct-Horse-7"


pytestmark = pytest.mark.usefixtures("logging_restored")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VPLC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("VPLC_PASSWORD", raising=False)
    monkeypatch.delenv("VPLC_NEW_PASSWORD", raising=False)
    return tmp_path


def make_store(path: Path, users: dict[str, str]) -> UserStore:
    """Users (id → role) with PW as their own password, at a low scrypt cost for tests."""
    store = UserStore.load(path, create=True, policy=PasswordPolicy(kdf_n=2**14, max_failures=3))
    for uid, role in users.items():
        store.add(uid, printed_name=f"{uid.title()} Tester", role=role, password="Temp-Pass-123",
                  now_s=T0, by="test")  # fmt: skip
        store.change_password(uid, "Temp-Pass-123", PW, now_s=T0)
    return store


def access_file(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "access.yaml"
    body = {"user_store": "users.json", "commands": {"seen_file": "ids.seen"}, **extra}
    path.write_text(yaml.safe_dump(body))
    return path


def _cmd(user: str, token: str, cmd_id: str) -> dict[str, Any]:
    return {"id": cmd_id, "ts": datetime.now(UTC).isoformat(), "user": user, "token": token,
            "cmd": "set_parameter", "name": "sp", "value": 1.0}  # fmt: skip


def test_access_file_points_at_the_store_and_keeps_token_users(state: Path) -> None:
    make_store(state / "users.json", {"jdoe": "operator"})
    path = access_file(state, users={"scada": {"role": "viewer", "token_sha256": hash_token("t")}})
    access = load_access_config(path)
    assert access.authorize(cmd="set_parameter", user="jdoe", token=PW, role=None) == "operator"
    assert access.authorize(cmd="handover_status", user="scada", token="t", role=None) == "viewer"
    with pytest.raises(AccessDeniedError, match="password is wrong"):
        access.authorize(cmd="set_parameter", user="jdoe", token="nope", role=None)
    with pytest.raises(AccessDeniedError, match="needs role 'engineer'"):
        access.authorize(cmd="force", user="jdoe", token=PW, role=None)


def test_a_config_with_its_store_loaded_goes_to_a_front_ends_child(state: Path) -> None:
    """Front-ends pickle the access config for their spawned child (MQTT, OPC UA, web)."""
    make_store(state / "users.json", {"jdoe": "operator"})
    access = load_access_config(access_file(state))
    assert access.user_store_for() is not None  # loaded: it holds a lock
    copy = pickle.loads(pickle.dumps(access))
    assert copy.authorize(cmd="set_parameter", user="jdoe", token=PW, role=None) == "operator"
    assert access.user_store_for() is not None  # the original keeps its loaded store


def test_missing_store_or_id_in_both_places_is_a_config_error(state: Path) -> None:
    with pytest.raises(ValueError, match=r"user_store: .*no such file"):
        load_access_config(access_file(state))
    make_store(state / "users.json", {"jdoe": "operator"})
    clash = {"jdoe": {"role": "viewer", "token_sha256": hash_token("t")}}
    with pytest.raises(ValueError, match="both token users"):
        load_access_config(access_file(state, users=clash))


def test_command_path_audits_a_known_users_refusal_and_locks_out(state: Path) -> None:
    make_store(state / "users.json", {"jdoe": "operator"})
    access = load_access_config(access_file(state))
    audit = AuditLog(state / "audit.jsonl", key_file=state / "key.pem", fsync=False)
    applied: list[Any] = []

    def apply(cmd: Any) -> CommandResponse:
        applied.append(cmd)
        return CommandResponse(id=cmd.id, cmd=cmd.cmd, status="accepted", user=cmd.user)

    handler = CommandHandler(None, access=access, audit=audit, apply=apply, app="demo")
    ok = handler.handle_payload(json.dumps(_cmd("jdoe", PW, "c1")))
    assert ok.status == "accepted" and len(applied) == 1
    for i in range(3):
        bad = handler.handle_payload(json.dumps(_cmd("jdoe", "guess", f"g{i}")))
        assert bad.status == "refused"
    locked = handler.handle_payload(json.dumps(_cmd("jdoe", PW, "c2")))
    assert locked.status == "refused" and "locked" in locked.reason
    unknown = handler.handle_payload(json.dumps(_cmd("mallory", PW, "m1")))
    assert unknown.status == "refused" and len(applied) == 1
    events = [(r["event"], r.get("code")) for r in audit.records()]
    assert events.count(("login_refused", "bad_password")) == 3
    assert ("user_locked", None) in events and ("login_refused", "locked") in events
    # Unknown ids are counted in the refusal summary, not one record each (flood cost).
    assert not any(r.get("user") == "mallory" for r in audit.records())
    handler.close()
    assert any(r["event"] == "command_refusals" for r in audit.records())


def _users(state: Path, *argv: str, env: dict[str, str], mp: pytest.MonkeyPatch) -> int:
    for key in ("VPLC_PASSWORD", "VPLC_NEW_PASSWORD"):
        if key in env:
            mp.setenv(key, env[key])
        else:
            mp.delenv(key, raising=False)
    return main(["users", *argv, "--store", str(state / "u.json")])


def test_cli_users_lifecycle(state: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    mp = monkeypatch
    new = {"VPLC_NEW_PASSWORD": "Temp-Pass-123"}
    assert _users(state, "add", "jdoe", "--name", "Jane Doe", "--role", "engineer", env=new,
                  mp=mp) == 0  # fmt: skip
    # Now an engineer exists: further changes need --as and that user's password.
    assert _users(state, "add", "bob", "--name", "Bob B", "--role", "operator", env=new,
                  mp=mp) == 2  # fmt: skip
    assert "needs --as" in capsys.readouterr().err
    change = {"VPLC_PASSWORD": "Temp-Pass-123", "VPLC_NEW_PASSWORD": PW}
    assert _users(state, "passwd", "jdoe", env=change, mp=mp) == 0
    admin = {"VPLC_PASSWORD": PW, "VPLC_NEW_PASSWORD": "Temp-Pass-123"}
    args = ("add", "bob", "--name", "Bob B", "--role", "operator", "--as", "jdoe")
    assert _users(state, *args, "--audit", str(state / "a.jsonl"), env=admin, mp=mp) == 0
    assert _users(state, *args, env=admin, mp=mp) == 2
    assert "never reused" in capsys.readouterr().err
    assert _users(state, "disable", "bob", "--reason", "moved", "--as", "jdoe", env=admin,
                  mp=mp) == 0  # fmt: skip
    assert _users(state, "reset", "nobody", "--as", "jdoe", env=admin, mp=mp) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    capsys.readouterr()
    assert _users(state, "list", "--json", env={}, mp=mp) == 0
    listed = {u["user_id"]: u for u in json.loads(capsys.readouterr().out)}
    assert listed["bob"]["status"] == "disabled" and listed["jdoe"]["status"] == "active"
    assert "password_hash" not in listed["jdoe"]
    records = [json.loads(line) for line in (state / "a.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records][-1] == "user_added"
    assert records[-1]["who"] == "jdoe" and records[-1]["subject"] == "bob"


def test_cli_bad_input_is_exit_2_with_a_paragraph(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    weak = {"VPLC_NEW_PASSWORD": "short"}
    assert _users(state, "add", "jdoe", "--name", "J D", "--role", "engineer", env=weak,
                  mp=monkeypatch) == 2  # fmt: skip
    assert "at least 12 characters" in capsys.readouterr().err
    # No terminal and no environment variable: refused, never read from argv.
    assert _users(state, "add", "jdoe", "--name", "J D", "--role", "engineer", env={},
                  mp=monkeypatch) == 2  # fmt: skip
    assert "VPLC_NEW_PASSWORD is not set" in capsys.readouterr().err
    assert _users(state, "list", env={}, mp=monkeypatch) == 2
    assert "no such file" in capsys.readouterr().err


def _trail_of_jdoe_added(state: Path, mp: pytest.MonkeyPatch) -> Path:
    """``vplc users add jdoe`` (Jane Doe, engineer) audited: the trail (trail_start, user_added)."""
    trail = state / "a.jsonl"
    new = {"VPLC_NEW_PASSWORD": "Temp-Pass-123"}
    assert _users(state, "add", "jdoe", "--name", "Jane Doe", "--role", "engineer", "--audit",
                  str(trail), env=new, mp=mp) == 0  # fmt: skip
    return trail


def test_audit_export_csv_carries_the_verdict_and_signals_tampering(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trail = _trail_of_jdoe_added(state, monkeypatch)
    out = state / "review.csv"
    assert main(["audit", "show", str(trail), "--csv", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith(f"# audit trail {trail}: verify: OK")
    assert lines[1].startswith("seq,when,event,who,what")
    assert any("user_added jdoe" in line for line in lines)
    trail.write_text(trail.read_text().replace("Jane Doe", "John Doe"))
    assert main(["audit", "show", str(trail), "--csv", str(out)]) == 1
    first = out.read_text().splitlines()[0]
    assert "verify: FAILED: record 2" in first


def test_audit_export_pdf_carries_the_verdict_and_signals_tampering(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pypdf import PdfReader

    trail = _trail_of_jdoe_added(state, monkeypatch)
    out = state / "review.pdf"
    assert main(["audit", "show", str(trail), "--pdf", str(out)]) == 0
    text = PdfReader(out).pages[0].extract_text()
    assert "INTEGRITY VERIFIED" in text and "verify: OK: 2 record(s)" in text
    assert "user_added jdoe" in text and "trail_start" in text
    trail.write_text(trail.read_text().replace("Jane Doe", "John Doe"))
    assert main(["audit", "show", str(trail), "--pdf", str(out)]) == 1
    text = PdfReader(out).pages[0].extract_text()
    assert "INTEGRITY NOT VERIFIED" in text and "verify: FAILED: record 2" in text
    assert main(["audit", "show", str(trail), "--pdf", str(state / "no" / "x.pdf")]) == 2
    assert "--pdf" in capsys.readouterr().err

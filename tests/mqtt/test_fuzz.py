"""Fuzzing the command path: random bytes, random JSON and near-valid commands never raise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import ScanEngine
from runtime.ops._access import AccessConfig
from runtime.ops._audit import AuditLog, verify_audit_log
from runtime.ops._command_handler import CommandHandler
from tests.mqtt.conftest import TOKENS

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
CMDS = ["start", "stop", "reset", "set_parameter", "force", "unforce", "ack_alarm", "phase", "x"]
FIELDS = [
    "id",
    "cmd",
    "user",
    "token",
    "role",
    "reason",
    "name",
    "point",
    "value",
    "block",
    "command",
]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
near_valid = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(max_size=10), st.integers(), st.none()),
        "cmd": st.sampled_from(CMDS),
        "user": st.sampled_from([*TOKENS, "mallory", ""]),
    },
    optional={
        k: st.sampled_from(["gain", "X", "Y", "N", "main.phase", "main.high", "START", "HOLD"])
        | scalars
        for k in FIELDS[3:]
    },
)


def _handler(engine: ScanEngine, access: AccessConfig, tmp_path: Path) -> CommandHandler:
    audit = AuditLog(tmp_path / "fuzz-audit.jsonl", fsync=False)
    return CommandHandler(engine, access=access, audit=audit, timeout_s=1.0, max_bytes=4096)


def _check(handler: CommandHandler, payload: bytes) -> None:
    resp = handler.handle_payload(payload)
    assert resp.status in ("accepted", "refused")
    json.loads(resp.model_dump_json())  # always publishable
    assert "internal error" not in resp.reason


def test_random_bytes(engine: ScanEngine, access: AccessConfig, tmp_path: Path) -> None:
    handler = _handler(engine, access, tmp_path)

    @FUZZ
    @given(st.binary(max_size=300) | st.binary(min_size=4000, max_size=5000))
    def run(payload: bytes) -> None:
        _check(handler, payload)
        assert handler.handle_payload(payload).status == "refused"

    run()
    assert engine.running


def test_random_json(engine: ScanEngine, access: AccessConfig, tmp_path: Path) -> None:
    handler = _handler(engine, access, tmp_path)

    @FUZZ
    @given(json_values)
    def run(value: Any) -> None:
        _check(handler, json.dumps(value).encode())

    run()
    assert engine.running


def test_near_valid_commands(engine: ScanEngine, access: AccessConfig, tmp_path: Path) -> None:
    handler = _handler(engine, access, tmp_path)

    @FUZZ
    @given(near_valid, st.booleans())
    def run(body: dict[str, Any], signed: bool) -> None:
        if signed and isinstance(body.get("user"), str) and body["user"] in TOKENS:
            body["token"] = TOKENS[body["user"]]
        resp = handler.handle_payload(json.dumps(body).encode())
        assert resp.status in ("accepted", "refused") and "internal error" not in resp.reason
        if isinstance(body.get("id"), str) and 0 < len(body["id"]) <= 128:
            assert resp.id == body["id"]

    run()
    assert engine.running
    assert verify_audit_log(tmp_path / "fuzz-audit.jsonl").ok


def test_deeply_nested_json_is_refused(
    engine: ScanEngine, access: AccessConfig, tmp_path: Path
) -> None:
    handler = _handler(engine, access, tmp_path)
    resp = handler.handle_payload(b"[" * 3000 + b"]" * 3000)
    assert resp.status == "refused" and resp.id is None

"""Electronic signatures on critical commands: preview, password re-entry, two-person rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runtime.core._clock import VirtualClock
from runtime.core._engine import ScanEngine
from runtime.core._loader import load_app
from runtime.core.manifest import ManifestError
from runtime.ops._access import load_access_config
from runtime.ops._audit import AuditLog
from runtime.ops._command_handler import CommandHandler
from runtime.ops._commands import CommandResponse, apply_now
from tests.conftest import MakeApp, memory_manifest
from tests.runtime.ops.test_user_access import PW, access_file, make_store

GMP = {
    "critical": [
        {"cmd": "set_parameter", "targets": ["gain"], "meanings": ["performed", "approved"],
         "description": "gain change"},
        {"cmd": "force", "meanings": ["performed"]},
    ]
}  # fmt: skip


class Rig:
    def __init__(self, tmp: Path, make_app: MakeApp) -> None:
        app = load_app(make_app(memory_manifest(gmp=GMP)))
        self.engine = ScanEngine(app, clock=VirtualClock())
        self.engine.start()
        self.engine.run_until(50_000_000)
        make_store(tmp / "users.json", {"ann": "operator", "quinn": "engineer", "otto": "viewer"})
        self.audit = AuditLog(tmp / "audit.jsonl", key_file=tmp / "key.pem", fsync=False)
        access = load_access_config(access_file(tmp))
        self.handler = CommandHandler(
            None, access=access, audit=self.audit, app="testapp", apply=self._apply
        )
        self.n = 0

    def _apply(self, cmd: Any) -> CommandResponse:
        return apply_now(self.engine, cmd)  # virtual time: we are between two cycles

    def send(self, user: str = "ann", **body: Any) -> CommandResponse:
        self.n += 1
        msg = {"id": f"c{self.n}", "ts": datetime.now(UTC).isoformat(), "user": user,
               "token": PW, **body}  # fmt: skip
        return self.handler.handle_payload(json.dumps(msg))


@pytest.fixture
def rig(tmp_path: Path, make_app: MakeApp) -> Rig:
    return Rig(tmp_path, make_app)


SET: dict[str, Any] = {"cmd": "set_parameter", "name": "gain", "value": 3.0, "reason": "recipe B"}


def _sig(user: str, meaning: str, digest: str, password: str = PW) -> dict[str, Any]:
    return {"user": user, "password": password, "meaning": meaning, "content_hash": digest}


def test_unsigned_critical_change_is_refused(rig: Rig) -> None:
    resp = rig.send(**SET)
    assert resp.status == "refused" and "needs 2 electronic signature(s)" in resp.reason
    assert rig.engine.app.parameters["gain"].value == 2.0


def test_two_person_signed_change_is_applied_and_audited(rig: Rig) -> None:
    shown = rig.send(**SET, preview=True)
    assert shown.status == "preview" and shown.new["critical"] is True
    assert shown.new["content"]["current"] == 2.0
    digest = shown.new["content_hash"]
    sigs = [_sig("ann", "performed", digest), _sig("quinn", "approved", digest)]
    resp = rig.send(**SET, signatures=sigs)
    assert resp.status == "accepted", resp.reason
    assert rig.engine.app.parameters["gain"].value == 3.0
    record = [r for r in rig.audit.records() if r.get("status") == "accepted"][-1]
    names = [(s["user_id"], s["printed_name"], s["meaning"]) for s in record["signatures"]]
    assert names == [("ann", "Ann Tester", "performed"), ("quinn", "Quinn Tester", "approved")]
    assert all(s["content_hash"] == digest and "UTC" in s["clock"] for s in record["signatures"])
    assert PW not in (rig.audit.path.read_text())
    # The same signatures on another command (or again): the content was used up.
    again = rig.send(**SET, signatures=sigs)
    assert again.status == "refused" and "used already" in again.reason


def test_same_person_twice_and_wrong_meanings_are_refused(rig: Rig) -> None:
    digest = rig.send(**SET, preview=True).new["content_hash"]
    twice = rig.send(**SET, signatures=[_sig("ann", "performed", digest),
                                        _sig("ann", "approved", digest)])  # fmt: skip
    assert twice.status == "refused" and "different person" in twice.reason
    digest = rig.send(**SET, preview=True).new["content_hash"]
    swapped = rig.send(**SET, signatures=[_sig("ann", "approved", digest),
                                          _sig("quinn", "performed", digest)])  # fmt: skip
    assert swapped.status == "refused" and "meanings" in swapped.reason


def test_wrong_password_is_refused_counted_and_audited(rig: Rig) -> None:
    digest = rig.send(**SET, preview=True).new["content_hash"]
    bad = rig.send(**SET, signatures=[_sig("ann", "performed", digest),
                                      _sig("quinn", "approved", digest, "guess")])  # fmt: skip
    assert bad.status == "refused" and "signature of 'quinn' refused" in bad.reason
    refusals = [r for r in rig.audit.records() if r["event"] == "login_refused"]
    assert refusals[-1]["user"] == "quinn" and refusals[-1]["purpose"] == "signature"
    assert refusals[-1]["failures"] == 1
    assert rig.engine.app.parameters["gain"].value == 2.0


def test_content_changed_since_shown_is_refused(rig: Rig) -> None:
    digest = rig.send(**SET, preview=True).new["content_hash"]
    rig.engine.app.parameters["gain"].set(5.0)  # someone else changed it meanwhile
    resp = rig.send(**SET, signatures=[_sig("ann", "performed", digest),
                                       _sig("quinn", "approved", digest)])  # fmt: skip
    assert resp.status == "refused" and "changed since it was shown" in resp.reason
    # And a signature over another value than the one sent is refused as well.
    digest = rig.send(**SET, preview=True).new["content_hash"]
    other: dict[str, Any] = {**SET, "value": 4.0}
    resp = rig.send(**other, signatures=[_sig("ann", "performed", digest),
                                         _sig("quinn", "approved", digest)])  # fmt: skip
    assert resp.status == "refused" and rig.engine.app.parameters["gain"].value == 5.0


def test_signer_needs_the_commands_role_and_sender_cannot_forge_signed(rig: Rig) -> None:
    digest = rig.send(**SET, preview=True).new["content_hash"]
    low = rig.send(**SET, signatures=[_sig("ann", "performed", digest),
                                      _sig("otto", "approved", digest)])  # fmt: skip
    assert low.status == "refused" and "needs role 'operator'" in low.reason
    forged = {"user_id": "quinn", "printed_name": "Q", "role": "engineer", "meaning": "approved",
              "signed_at": "x", "clock": "x", "content_hash": "0" * 64,
              "manifestation_hash": "0" * 64}  # fmt: skip
    resp = rig.send(**SET, signed=[forged])
    assert resp.status == "refused" and "set by the runtime" in resp.reason


def test_a_single_signature_for_force_and_none_for_uncritical(rig: Rig) -> None:
    force: dict[str, Any] = {"cmd": "force", "point": "Y", "value": 1.0}
    assert rig.send("quinn", **force).status == "refused"
    digest = rig.send("quinn", **force, preview=True).new["content_hash"]
    ok = rig.send("quinn", **force, signatures=[_sig("quinn", "performed", digest)])
    assert ok.status == "accepted", ok.reason
    assert rig.send("quinn", cmd="unforce", point="Y").status == "accepted"


def test_force_signature_holds_while_the_live_value_moves(rig: Rig) -> None:
    """A sensor's reading changes every cycle: only another force invalidates the content."""
    force: dict[str, Any] = {"cmd": "force", "point": "Y", "value": 1.0}
    shown = rig.send("quinn", **force, preview=True).new
    assert shown["content"]["current"] == {"forced": False, "forced_value": None}
    rig.engine.image["Y"].value = 0.25  # the plant moved between showing and signing
    ok = rig.send("quinn", **force, signatures=[_sig("quinn", "performed", shown["content_hash"])])
    assert ok.status == "accepted", ok.reason
    again = rig.send("quinn", **force, preview=True).new  # forced now: the content differs
    assert again["content"]["current"] == {"forced": True, "forced_value": 1.0}
    rig.send("quinn", cmd="force", point="Y", value=0.5, signatures=[
        _sig("quinn", "performed", rig.send("quinn", cmd="force", point="Y", value=0.5,
                                            preview=True).new["content_hash"])])  # fmt: skip
    late = rig.send(
        "quinn", **force, signatures=[_sig("quinn", "performed", again["content_hash"])]
    )
    assert late.status == "refused" and "content changed" in late.reason


def test_gmp_section_is_validated(make_app: MakeApp) -> None:
    bad: dict[str, Any] = {"critical": [{"cmd": "set_parameter", "targets": ["gian"]}]}
    with pytest.raises(ManifestError, match=r"gmp\.critical\.0\.targets\.0: 'gian'"):
        load_app(make_app(memory_manifest(gmp=bad)))
    bad = {"specifications": [{"name": "T", "signal": "X", "low": 5, "high": 1}]}
    with pytest.raises(ManifestError, match=r"low 5\.0 is not below high 1\.0"):
        load_app(make_app(memory_manifest(gmp=bad)))
    bad = {"critical": [{"cmd": "set_parameter", "meanings": ["agreed"]}]}
    with pytest.raises(ManifestError, match="meanings"):
        load_app(make_app(memory_manifest(gmp=bad)))

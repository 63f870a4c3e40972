"""E-signatures through the web API: preview, two signers, refusals, nothing secret written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.web.conftest import PASSWORDS, SIGNERS, Run, login, preview, signatures, signed
from tests.web.test_api import point_index, wait_for

pytestmark = pytest.mark.slow


def store_user(run: Run, user: str) -> dict[str, Any]:
    users: dict[str, Any] = json.loads((run.folder / "users.json").read_text())["users"]
    return dict(users[user])


def unforce(run: Run, point: str) -> None:
    erik = login(run, "erik")
    assert (
        erik.post("/api/unforce", json={"point": point, "reason": "test done"}).status_code == 200
    )


def test_preview_shows_the_content_and_the_rule(served: Run) -> None:
    erik = login(served, "erik")
    sign = preview(erik, "/api/force", {"point": "AT502", "value": 7.0, "reason": "probe check"})
    assert sign["critical"] is True
    assert sign["rule"] == {
        "description": "forcing an I/O point",
        "meanings": ["performed", "approved"],
        "signers": 2,
    }
    content = sign["content"]
    assert content["command"]["point"] == "AT502" and content["command"]["value"] == 7.0
    assert content["command"]["reason"] == "probe check" and content["app"] == "bioreactor"
    assert len(sign["content_hash"]) == 64
    # Not critical (unforce has no rule): the preview says so, no rule to sign.
    plain = preview(erik, "/api/unforce", {"point": "AT502"})
    assert plain["critical"] is False and plain["rule"] is None
    meta = erik.get("/api/meta").json()
    assert {"cmd": "force", "signers": 2}.items() <= meta["critical"][2].items()


def test_signed_force_is_audited_with_both_manifestations(served: Run) -> None:
    erik = login(served, "erik")
    body = {"point": "FT701", "value": 4.0, "reason": "feed pump calibration"}
    r = signed(erik, "/api/force", body, "erik", "quinn")
    assert r.status_code == 200, r.text
    i = point_index(erik, "FT701")
    wait_for(lambda: erik.get("/api/state").json()["f"][i] == 1, what="FT701 forced")
    rec = next(a for a in served.audit() if a.get("id") == r.json()["id"])
    assert rec["status"] == "accepted" and rec["user"] == "erik"
    sigs = rec["signatures"]
    assert [(s["user_id"], s["printed_name"], s["meaning"]) for s in sigs] == [
        ("erik", SIGNERS["erik"], "performed"),
        ("quinn", SIGNERS["quinn"], "approved"),
    ]
    assert len({s["content_hash"] for s in sigs}) == 1 and len(sigs[0]["content_hash"]) == 64
    assert all(s["signed_at"] and s["clock"] and s["manifestation_hash"] for s in sigs)
    unforce(served, "FT701")
    written = (served.folder / "audit.jsonl").read_text() + served.log.read_text()
    for user in SIGNERS:
        assert PASSWORDS[user] not in written, f"{user}'s password was written"


def test_wrong_signer_password_is_refused_and_counted(served: Run) -> None:
    erik = login(served, "erik")
    i = point_index(erik, "FT701")
    # The test before unforced it: wait until the page's state says so, then refuse a force.
    wait_for(lambda: erik.get("/api/state").json()["f"][i] == 0, what="FT701 not forced")
    before = store_user(served, "quinn")["failures"]
    body = {"point": "FT701", "value": 4.0, "reason": "x"}
    sign = preview(erik, "/api/force", body)
    sigs = signatures(sign, "erik", "quinn", quinn="not-quinns-password")
    r = erik.post("/api/force", json={**body, "signatures": sigs})
    assert r.status_code == 409
    assert "signature of 'quinn' refused" in r.json()["reason"]
    assert r.json()["code"] == "signature_invalid" and "signatures_required" not in r.json()
    assert store_user(served, "quinn")["failures"] == before + 1  # towards the lockout
    refusals = [a for a in served.audit() if a.get("event") == "login_refused"]
    assert any(a.get("subject", a.get("user")) == "quinn" for a in refusals), refusals[-3:]
    assert "not-quinns-password" not in (served.folder / "audit.jsonl").read_text()
    assert erik.get("/api/state").json()["f"][i] == 0


def test_signature_over_changed_content_is_refused(served: Run) -> None:
    erik = login(served, "erik")
    body = {"point": "AT501", "value": 10.0, "reason": "first"}
    stale = preview(erik, "/api/force", body)
    # Someone else forces the point first: what was shown is no longer what would be done.
    r = signed(
        erik, "/api/force", {"point": "AT501", "value": 12.0, "reason": "other"}, "erik", "quinn"
    )
    assert r.status_code == 200, r.text
    try:
        r = erik.post("/api/force", json={**body, "signatures": signatures(stale, "erik", "quinn")})
        assert r.status_code == 409 and "content changed" in r.json()["reason"]
        # The same signatures sent for a different command than the one previewed: refused.
        fresh = preview(erik, "/api/force", body)
        other = {**body, "value": 11.0, "signatures": signatures(fresh, "erik", "quinn")}
        r = erik.post("/api/force", json=other)
        assert r.status_code == 409 and "content changed" in r.json()["reason"]
    finally:
        unforce(served, "AT501")


def test_same_signer_twice_breaks_the_two_person_rule(served: Run) -> None:
    erik = login(served, "erik")
    body = {"point": "FT701", "value": 4.0, "reason": "x"}
    sign = preview(erik, "/api/force", body)
    twice = signatures(sign, "erik", "quinn")
    twice[1] = {**twice[0], "meaning": "approved"}
    r = erik.post("/api/force", json={**body, "signatures": twice})
    assert r.status_code == 409 and "two-person rule" in r.json()["reason"]
    # One signature where the rule wants two: refused, saying how many.
    one = signatures(sign, "erik", "quinn")[:1]
    r = erik.post("/api/force", json={**body, "signatures": one})
    assert r.status_code == 409 and "needs 2 electronic signature(s)" in r.json()["reason"]
    assert erik.get("/api/state").json()["f"][point_index(erik, "FT701")] == 0

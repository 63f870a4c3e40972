"""The web HMI's API against a real `vplc run`: logins, CSRF, roles, limits, the command path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.web.conftest import APP, VPLC, Run, login, signed

pytestmark = pytest.mark.slow


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def param(client: httpx.Client, name: str) -> Any:
    meta = client.get("/api/meta").json()
    k = [p["name"] for p in meta["params"]].index(name)
    return client.get("/api/state").json()["params"][k]


def point_index(client: httpx.Client, name: str) -> int:
    return [p["name"] for p in client.get("/api/meta").json()["points"]].index(name)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/meta"),
        ("GET", "/api/state"),
        ("GET", "/api/stream"),
        ("GET", "/api/trend?points=TT101"),
        ("GET", "/api/tree"),
        ("GET", "/api/audit"),
        ("POST", "/api/parameter"),
        ("POST", "/api/force"),
        ("POST", "/api/logout"),
    ],
)
def test_unauthenticated_api_is_401(served: Run, method: str, path: str) -> None:
    r = httpx.request(method, served.url + path, json={}, timeout=10)
    assert r.status_code == 401
    assert "log in" in r.json()["reason"]


def test_page_is_served_with_a_strict_content_security_policy(served: Run) -> None:
    r = httpx.get(served.url + "/", timeout=10)
    assert r.status_code == 200 and "<main" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    js = httpx.get(served.url + "/static/app.js", timeout=10)
    assert js.status_code == 200 and "EventSource" in js.text
    assert "innerHTML" not in js.text  # server texts go in as text only


def test_wrong_password_then_lockout(served: Run) -> None:
    client = httpx.Client(base_url=served.url, timeout=10)
    for _ in range(3):
        r = client.post("/api/login", json={"user": "vera", "password": "nope"})
        assert r.status_code == 401 and "wrong password" in r.json()["reason"]
    r = client.post("/api/login", json={"user": "vera", "password": "view-secret"})
    assert r.status_code == 401 and "locked out" in r.json()["reason"]
    r = client.post("/api/login", json={"user": "vera"})
    assert r.status_code == 400 and "password" in r.json()["reason"]


def test_session_cookie_flags_and_logout(served: Run) -> None:
    client = httpx.Client(base_url=served.url, timeout=10)
    r = client.post("/api/login", json={"user": "olga", "password": "op-secret"})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    assert client.get("/api/session").json()["role"] == "operator"
    assert client.post("/api/logout", json={}).status_code == 200
    assert client.get("/api/meta").status_code == 401


def test_operator_writes_a_parameter_with_a_reason_audited_as_the_user(served: Run) -> None:
    olga = login(served, "olga")
    reason = "<script>alert('x')</script> raise for the new strain"
    r = olga.post("/api/parameter", json={"name": "temp_sp", "value": 37.5, "reason": reason})
    assert r.status_code == 200, r.text
    assert r.json()["new"] == 37.5 and r.json()["user"] == "olga"
    wait_for(lambda: param(olga, "temp_sp") == 37.5, what="the new setpoint in the stream")
    rec = next(a for a in served.audit() if a.get("id") == r.json()["id"])
    assert rec["user"] == "olga" and rec["why"] == reason and rec["status"] == "accepted"
    assert rec["source"].startswith("web:")
    shown = olga.get("/api/audit", params={"user": "olga", "cmd": "set_parameter"}).json()
    assert any(x.get("why") == reason for x in shown["records"])  # as data, for textContent


def test_write_without_or_with_a_wrong_csrf_token_is_refused(served: Run) -> None:
    olga = login(served, "olga")
    before = param(olga, "do_sp")
    for token in (None, "forged"):
        if token is None:
            del olga.headers["X-CSRF-Token"]
        else:
            olga.headers["X-CSRF-Token"] = token
        r = olga.post("/api/parameter", json={"name": "do_sp", "value": 50.0, "reason": "x"})
        assert r.status_code == 403 and "CSRF" in r.json()["reason"]
    assert param(olga, "do_sp") == before


def test_viewer_reads_everything_and_changes_nothing(served: Run) -> None:
    viewer = login(served, "vic")
    assert viewer.get("/api/meta").status_code == 200
    assert viewer.get("/api/tasks").status_code == 200
    before = param(viewer, "ph_sp")
    r = viewer.post("/api/parameter", json={"name": "ph_sp", "value": 7.1, "reason": "try"})
    assert r.status_code == 403
    assert "needs role 'operator'" in r.json()["reason"]
    assert r.json()["code"] == "not_permitted"
    r = viewer.post("/api/phase", json={"block": "batch.phase", "command": "HOLD"})
    assert r.status_code == 403
    assert param(viewer, "ph_sp") == before
    refused = [a for a in served.audit() if a.get("user") == "vic" and a.get("status") == "refused"]
    assert len(refused) >= 2  # refusals after authentication are audited


def test_out_of_range_value_is_refused_with_the_limits(served: Run) -> None:
    olga = login(served, "olga")
    r = olga.post("/api/parameter", json={"name": "temp_sp", "value": 45, "reason": "x"})
    assert r.status_code == 422
    body = r.json()
    assert body["limits"] == {"min": 30.0, "max": 40.0, "unit": "degC"}
    assert "above max 40" in body["reason"] and body["code"] == "out_of_limits"
    r = olga.post("/api/parameter", json={"name": "nope", "value": 1, "reason": "x"})
    assert r.status_code == 409 and "unknown parameter" in r.json()["reason"]
    r = olga.post("/api/parameter", json={"name": "temp_sp", "value": [1], "reason": "x"})
    assert r.status_code == 400 and "value" in r.json()["reason"]


def test_forcing_is_for_engineers_and_shows_in_the_stream(served: Run) -> None:
    olga, erik = login(served, "olga"), login(served, "erik")
    r = olga.post("/api/force", json={"point": "FT701", "value": 5.0, "reason": "x"})
    assert r.status_code == 403 and "engineer" in r.json()["reason"]
    i = point_index(erik, "FT701")
    body = {"point": "FT701", "value": 5.0, "reason": "loop check"}
    r = erik.post("/api/force", json=body)  # unsigned: the app makes forcing critical
    assert r.status_code == 409 and r.json()["signatures_required"] is True
    assert "2 electronic signature(s)" in r.json()["reason"]
    assert r.json()["code"] == "signature_required"
    r = signed(erik, "/api/force", body, "erik", "quinn")
    assert r.status_code == 200, r.text
    wait_for(lambda: erik.get("/api/state").json()["f"][i] == 1, what="FORCED in the state")
    assert erik.get("/api/state").json()["v"][i] == 5.0
    # Out of range: refused at the preview already, before anyone is asked to sign.
    body = {"point": "FT701", "value": 500.0, "reason": "x", "preview": True}
    r = erik.post("/api/force", json=body)
    assert r.status_code == 409 and "outside its range" in r.json()["reason"]
    assert erik.post("/api/unforce", json={"point": "FT701"}).status_code == 200
    wait_for(lambda: erik.get("/api/state").json()["f"][i] == 0, what="unforced")


def test_alarm_acknowledged_with_a_comment(served: Run) -> None:
    olga, erik = login(served, "olga"), login(served, "erik")
    meta = erik.get("/api/meta").json()
    j = meta["alarms"].index("alarms.level")
    r = signed(erik, "/api/force", {"point": "LT401", "value": 97.0}, "erik", "quinn")
    assert r.status_code == 200, r.text
    try:
        wait_for(lambda: erik.get("/api/state").json()["alarms"][j][1], what="level unacked")
    finally:
        erik.post("/api/unforce", json={"point": "LT401"})
    r = olga.post("/api/alarm/ack", json={"block": "alarms.level", "comment": "sensor test"})
    assert r.status_code == 200, r.text
    wait_for(lambda: not olga.get("/api/state").json()["alarms"][j][1], what="acknowledged")
    rec = next(a for a in served.audit() if a.get("id") == r.json()["id"])
    assert rec["why"] == "sensor test" and rec["cmd"] == "ack_alarm"


def test_batch_hold_and_restart(served: Run) -> None:
    olga = login(served, "olga")
    k = olga.get("/api/meta").json()["phases"].index("batch.phase")
    state = lambda: olga.get("/api/state").json()["phases"][k][0]  # noqa: E731
    wait_for(lambda: state() == "RUNNING", what="the batch running (auto_start)")
    r = olga.post("/api/phase", json={"block": "batch.phase", "command": "HOLD", "reason": "x"})
    assert r.status_code == 200, r.text
    wait_for(lambda: state() == "HELD", what="HELD")
    r = olga.post("/api/phase", json={"block": "batch.phase", "command": "START"})
    assert r.status_code == 409  # START is for IDLE: refused in words, nothing done
    assert "START" in r.json()["reason"]
    r = olga.post("/api/phase", json={"block": "batch.phase", "command": "RESTART"})
    assert r.status_code == 200
    wait_for(lambda: state() == "RUNNING", what="RUNNING again")


def test_stream_sends_a_snapshot_then_changes(served: Run) -> None:
    olga = login(served, "olga")
    events: list[dict[str, Any]] = []
    with olga.stream("GET", "/api/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            if len(events) >= 3:
                break
    assert events[0]["type"] == "full" and len(events[0]["v"]) == 21
    assert all(e["type"] == "delta" for e in events[1:])
    assert any("v" in e for e in events[1:])  # the plant moves: values change


def test_engineering_reads(served: Run) -> None:
    erik = login(served, "erik")
    tree = erik.get("/api/tree").json()["tree"]
    assert {"path": "loops.tic101", "type": "PID", "kind": "block"} in tree
    watch = erik.get("/api/watch", params={"paths": "loops.tic101,nowhere"}).json()
    assert "OUT" in watch["values"]["loops.tic101"] and watch["values"]["nowhere"] is None
    loops = erik.get("/api/loops").json()["values"]
    assert loops["loops.aic201"]["MODE"] in ("AUTO", "MAN", "TRACK")
    tasks = erik.get("/api/tasks").json()
    assert tasks["tasks"]["control"]["cycles"] > 0
    assert sum(n for _, n in tasks["histograms"]["control"]["latency"]) > 0
    trend = erik.get("/api/trend", params={"points": "TT101,AT201"}).json()
    assert len(trend["t"]) >= 2 and len(trend["series"]["TT101"]) == len(trend["t"])
    assert erik.get("/api/trend", params={"points": "XX"}).status_code == 400
    verdict = erik.get("/api/audit/verify").json()
    assert verdict["ok"], verdict


def test_a_stalled_scan_shows_in_the_status(served: Run) -> None:
    """The scan process frozen (SIGSTOP): the web process says so instead of stale values."""
    olga = login(served, "olga")
    os.kill(served.proc.pid, signal.SIGSTOP)
    try:
        status = wait_for(
            lambda: (s := olga.get("/api/state").json()["status"])["state"] == "STALLED" and s,
            what="STALLED",
        )
        assert "no new values" in status["reason"]
    finally:
        os.kill(served.proc.pid, signal.SIGCONT)
    wait_for(lambda: olga.get("/api/state").json()["status"]["state"] == "RUN", what="RUN")


@pytest.mark.parametrize(
    "content,needle",
    [
        ("port: 99999\n", "port"),
        ("sample_ms: 1\n", "sample_ms"),
        ("tls_cert: a.pem\n", "tls_key"),
        ("colour: red\n", "colour"),
        ("overview: {Vessel: [NOPE]}\n", "overview.Vessel[0]"),
    ],
)
def test_broken_config_is_exit_2_naming_the_key(tmp_path, content: str, needle: str) -> None:
    cfg = tmp_path / "web.yaml"
    cfg.write_text(content)
    res = subprocess.run(
        [VPLC, "run", str(APP), "--web-config", str(cfg), "--no-view", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "VPLC_STATE_DIR": str(tmp_path / "state")},
    )
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and str(cfg) in res.stderr


def test_bad_listen_address_is_exit_2(tmp_path) -> None:
    res = subprocess.run(
        [VPLC, "run", str(APP), "--web", ":http", "--no-view", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "--web :http" in res.stderr

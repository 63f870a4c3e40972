"""The web answer (HTTP status, the signing dialog's trigger) follows the refusal's code.

The page opens its e-signature dialog when a refused write says ``signatures_required``
(``static/app.js``, ``command``); the server sets it from ``code == signature_required``.
Here the real command path (handler, roles, rates, the scan's checks) answers, with the
refusal's words reworded or planted in another refusal, and the answer must not change.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.ops._access import load_access_config
from runtime.ops._command_handler import CommandHandler
from runtime.web._sessions import Session
from runtime.web._writes import ForceBody, ParameterBody, WebCommands
from tests.conftest import MakeApp
from tests.runtime.ops._reworded import DECOY, REWORDED, reword_signature_refusal
from tests.runtime.ops.test_signatures import Rig
from tests.runtime.ops.test_user_access import PW, access_file


@pytest.fixture
def rig(tmp_path: Path, make_app: MakeApp) -> Rig:
    return Rig(tmp_path, make_app)


def _web(rig: Rig, handler: CommandHandler | None = None) -> WebCommands:
    handler = handler or rig.handler
    manifest = rig.engine.app.manifest
    gmp = manifest.gmp
    return WebCommands(
        handler,
        access=handler.access,
        params=list(manifest.parameters),
        critical=list(gmp.critical) if gmp is not None else [],
    )


def _session(user: str) -> Session:
    now = time.monotonic()
    return Session(sid="s", user=user, role="", csrf="c", created_s=now, last_s=now, secret=PW)


def _write(web: WebCommands, user: str, **body: Any) -> tuple[int, dict[str, Any]]:
    s = _session(user)
    cmd = web.set_parameter(s, ParameterBody(**body)) if "name" in body else None
    if cmd is None:
        cmd = web.force(s, ForceBody(**body))
    return asyncio.run(web.run(s, cmd))


def test_a_want_of_signatures_opens_the_dialog(rig: Rig) -> None:
    status, body = _write(_web(rig), "ann", name="gain", value=3.0)
    assert status == 409 and body["signatures_required"] is True
    assert body["code"] == "signature_required"


def test_a_reworded_want_of_signatures_still_opens_the_dialog(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    reword_signature_refusal(monkeypatch)
    status, body = _write(_web(rig), "ann", name="gain", value=3.0)
    assert body["reason"].startswith(REWORDED) and "electronic" not in body["reason"]
    assert status == 409 and body["signatures_required"] is True
    assert rig.engine.app.parameters["gain"].value == 2.0


def test_the_old_words_in_another_refusal_open_no_dialog(rig: Rig) -> None:
    status, body = _write(_web(rig), "ann", name=DECOY, value=3.0)
    assert DECOY in body["reason"] and body["code"] is None
    assert status == 409 and "signatures_required" not in body


def test_wrong_signatures_role_and_limits_have_their_status(rig: Rig) -> None:
    web = _web(rig)
    status, body = _write(web, "otto", name="gain", value=3.0)
    assert status == 403 and body["code"] == "not_permitted"
    status, body = _write(web, "ann", name="gain", value=10.5)
    assert status == 422 and body["code"] == "out_of_limits"
    assert body["limits"] == {"min": 0.0, "max": 10.0, "unit": ""}
    shown = _write(web, "ann", name="gain", value=3.0, preview=True)[1]
    digest = shown["sign"]["content_hash"]
    sigs = [{"user": "ann", "password": PW, "meaning": m, "content_hash": digest}
            for m in ("performed", "approved")]  # fmt: skip
    status, body = _write(web, "ann", name="gain", value=3.0, signatures=sigs)
    assert status == 409 and body["code"] == "signature_invalid"  # the same person twice
    assert "signatures_required" not in body  # the dialog says why; it does not reopen
    # A point's range: refused in words (no limits to carry), before anyone signs.
    status, body = _write(web, "quinn", point="X", value="hot")
    assert status == 409 and body["code"] == "out_of_limits" and "limits" not in body


def test_the_runtime_wide_rate_limit_is_429(rig: Rig, tmp_path: Path) -> None:
    """Its words never said "commands/s", which the page's status used to look for."""
    path = access_file(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    cfg["commands"] |= {"global_rate": 0.001, "global_burst": 1}
    path.write_text(yaml.safe_dump(cfg))
    handler = CommandHandler(
        None, access=load_access_config(path), audit=rig.audit, app="testapp", apply=rig._apply
    )
    web = _web(rig, handler)
    assert _write(web, "quinn", name="gain", value=30.0)[0] == 422  # takes the one token
    status, body = _write(web, "ann", name="gain", value=3.0)
    assert status == 429 and body["code"] == "rate_limited"
    assert "commands/s" not in body["reason"]

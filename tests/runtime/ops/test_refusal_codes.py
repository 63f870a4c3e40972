"""Each kind of refusal a front-end tells apart carries its RefusalCode, through every path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.core._engine import ScanEngine
from runtime.core._loader import load_app
from runtime.ops import RefusalCode
from runtime.ops._access import load_access_config
from runtime.ops._command_handler import CommandHandler
from runtime.ops._commands import CommandResponse, SetParameterCommand, apply_command
from tests.conftest import MakeApp, memory_manifest
from tests.runtime.ops.test_signatures import GMP, SET, Rig, _sig
from tests.runtime.ops.test_user_access import PW, access_file

C = RefusalCode


@pytest.fixture
def rig(tmp_path: Path, make_app: MakeApp) -> Rig:
    return Rig(tmp_path, make_app)


def _wire(resp: CommandResponse) -> CommandResponse:
    """The answer as it crosses the front's pipe and the MQTT reply topic: JSON and back."""
    text = resp.model_dump_json()
    assert json.loads(text)["code"] == (None if resp.code is None else resp.code.value)
    return CommandResponse.model_validate(json.loads(text))


def _refused(resp: CommandResponse, code: RefusalCode | None) -> None:
    assert resp.status == "refused", resp
    assert resp.code == code, resp.reason
    assert _wire(resp).code == code


def test_missing_signatures_are_signature_required(rig: Rig) -> None:
    _refused(rig.send(**SET), C.SIGNATURE_REQUIRED)
    digest = rig.send(**SET, preview=True).new["content_hash"]
    # One signature where the rule wants two: still a want of signatures.
    _refused(rig.send(**SET, signatures=[_sig("ann", "performed", digest)]), C.SIGNATURE_REQUIRED)
    assert rig.engine.app.parameters["gain"].value == 2.0


def test_wrong_or_misused_signatures_are_signature_invalid(rig: Rig) -> None:
    digest = rig.send(**SET, preview=True).new["content_hash"]
    wrong = [_sig("ann", "performed", digest), _sig("quinn", "approved", digest, "guess")]
    _refused(rig.send(**SET, signatures=wrong), C.SIGNATURE_INVALID)  # a wrong password
    twice = [_sig("ann", "performed", digest), _sig("ann", "approved", digest)]
    _refused(rig.send(**SET, signatures=twice), C.SIGNATURE_INVALID)  # two-person rule
    swapped = [_sig("ann", "approved", digest), _sig("quinn", "performed", digest)]
    _refused(rig.send(**SET, signatures=swapped), C.SIGNATURE_INVALID)  # meanings
    unseen = [_sig("ann", "performed", "0" * 64), _sig("quinn", "approved", "0" * 64)]
    _refused(rig.send(**SET, signatures=unseen), C.SIGNATURE_INVALID)  # never shown
    other = [_sig("quinn", "performed", digest), _sig("ann", "approved", digest)]
    _refused(rig.send(**SET, signatures=other), C.SIGNATURE_INVALID)  # not the sender first
    viewer = [_sig("ann", "performed", digest), _sig("otto", "approved", digest)]
    _refused(rig.send(**SET, signatures=viewer), C.SIGNATURE_INVALID)  # a signer's role
    digest = rig.send(**SET, preview=True).new["content_hash"]
    rig.engine.app.parameters["gain"].set(5.0)  # changed since shown
    good = [_sig("ann", "performed", digest), _sig("quinn", "approved", digest)]
    _refused(rig.send(**SET, signatures=good), C.SIGNATURE_INVALID)
    assert rig.engine.app.parameters["gain"].value == 5.0


def test_a_role_refusal_is_not_permitted(rig: Rig) -> None:
    _refused(rig.send("otto", **SET), C.NOT_PERMITTED)  # a viewer; before any signature check
    _refused(rig.send("ann", cmd="force", point="X", value=1.0), C.NOT_PERMITTED)  # engineer's
    _refused(rig.send("ann", **SET, role="engineer"), C.NOT_PERMITTED)  # acting above one's role


def test_a_value_outside_its_limits_is_out_of_limits(rig: Rig) -> None:
    # Checked before the signatures: nobody is asked to sign a value that cannot be taken.
    _refused(rig.send(**{**SET, "value": 10.5}), C.OUT_OF_LIMITS)
    _refused(rig.send(**{**SET, "value": -1}), C.OUT_OF_LIMITS)
    _refused(rig.send(**{**SET, "value": "warm"}), C.OUT_OF_LIMITS)
    _refused(rig.send(**{**SET, "value": 11.0, "preview": True}), C.OUT_OF_LIMITS)
    _refused(rig.send("quinn", cmd="force", point="X", value="hot"), C.OUT_OF_LIMITS)
    assert rig.engine.app.parameters["gain"].value == 2.0


def test_other_refusals_have_no_code_and_answers_none(rig: Rig) -> None:
    _refused(rig.send(cmd="set_parameter", name="nope", value=1.0), None)  # unknown parameter
    _refused(rig.send("quinn", cmd="reset"), None)  # no FAULT to reset: the state, not a kind
    _refused(rig.send(token="wrong", **SET), None)  # authentication
    shown = rig.send(**SET, preview=True)
    assert shown.status == "preview" and shown.code is None
    digest = shown.new["content_hash"]
    sigs = [_sig("ann", "performed", digest), _sig("quinn", "approved", digest)]
    done = rig.send(**SET, signatures=sigs)
    assert done.status == "accepted" and done.code is None and _wire(done).code is None


def _rate_handler(rig: Rig, tmp: Path, **policy: Any) -> CommandHandler:
    path = access_file(tmp)
    body = yaml.safe_load(path.read_text())
    body["commands"] |= policy
    path.write_text(yaml.safe_dump(body))
    return CommandHandler(
        None, access=load_access_config(path), audit=rig.audit, app="testapp", apply=rig._apply
    )


def _body(user: str, n: int) -> str:
    return json.dumps({"id": f"r{n}", "ts": datetime.now(UTC).isoformat(), "user": user,
                       "token": PW, "cmd": "start"})  # fmt: skip


def test_a_rate_limit_is_rate_limited_for_a_user_and_in_all(rig: Rig, tmp_path: Path) -> None:
    per_user = _rate_handler(rig, tmp_path, user_rate=0.001, user_burst=1)
    assert per_user.handle_payload(_body("quinn", 1)).status == "accepted"
    _refused(per_user.handle_payload(_body("quinn", 2)), C.RATE_LIMITED)
    in_all = _rate_handler(rig, tmp_path, global_rate=0.001, global_burst=1)
    assert in_all.handle_payload(_body("quinn", 3)).status == "accepted"
    # Another user: the runtime-wide limit, whose words do not say "commands/s".
    limited = in_all.handle_payload(_body("otto", 4))
    _refused(limited, C.RATE_LIMITED)
    assert "commands/s" not in limited.reason


@pytest.fixture
def threaded(make_app: MakeApp) -> Iterator[ScanEngine]:
    """The scan on its own thread: apply_command's way, refusals raised on the scan thread."""
    eng = ScanEngine(load_app(make_app(memory_manifest(gmp=GMP))))
    eng.start()
    eng.start_thread()
    yield eng
    eng.request_stop()
    eng.join(5)
    eng.close()


def test_codes_cross_from_the_scan_thread(threaded: ScanEngine) -> None:
    base = {"ts": datetime.now(UTC), "user": "ann", "cmd": "set_parameter", "name": "gain"}
    unsigned = SetParameterCommand(id="t1", value=3.0, **base)
    _refused(apply_command(threaded, unsigned), C.SIGNATURE_REQUIRED)
    high = SetParameterCommand(id="t2", value=30.0, **base)
    _refused(apply_command(threaded, high), C.OUT_OF_LIMITS)
    assert threaded.app.parameters["gain"].value == 2.0

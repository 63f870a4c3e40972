"""Sparkplug explains a want of e-signatures from the refusal's code, whatever its words."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.ops import RefusalCode
from runtime.ops._commands import SetParameterCommand
from runtime.ops._signatures import SIGN_HOW
from runtime.sparkplug._commands import unsigned_apply
from tests.conftest import MakeApp
from tests.runtime.ops._reworded import DECOY, REWORDED, base, reword_signature_refusal
from tests.runtime.ops.test_signatures import Rig

CANNOT = "a Sparkplug B DCMD cannot carry electronic signatures"


@pytest.fixture
def rig(tmp_path: Path, make_app: MakeApp) -> Rig:
    return Rig(tmp_path, make_app)


def _gain(n: int, value: float = 3.0, name: str = "gain") -> SetParameterCommand:
    return SetParameterCommand(cmd="set_parameter", name=name, value=value, **base("ann", n))


def test_the_sparkplug_explanation_replaces_the_signing_hint(rig: Rig) -> None:
    resp = unsigned_apply(rig._apply)(_gain(1))
    assert resp.status == "refused" and resp.code == RefusalCode.SIGNATURE_REQUIRED
    assert resp.reason.startswith("critical action (gain change): needs 2 electronic signature")
    assert CANNOT in resp.reason and SIGN_HOW not in resp.reason and "preview" not in resp.reason
    assert rig.engine.app.parameters["gain"].value == 2.0


def test_a_reworded_refusal_still_gets_the_sparkplug_explanation(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    reword_signature_refusal(monkeypatch)
    resp = unsigned_apply(rig._apply)(_gain(1))
    assert resp.status == "refused" and resp.code == RefusalCode.SIGNATURE_REQUIRED
    assert resp.reason.startswith(REWORDED) and "electronic signature(s)" not in resp.reason
    assert CANNOT in resp.reason  # what a host reads is as before: it cannot be signed here
    assert rig.engine.app.parameters["gain"].value == 2.0


def test_the_old_words_in_another_refusal_change_nothing(rig: Rig) -> None:
    direct = rig._apply(_gain(1, name=DECOY))
    resp = unsigned_apply(rig._apply)(_gain(2, name=DECOY))
    assert resp.status == "refused" and resp.code is None and DECOY in resp.reason
    assert resp.reason == direct.reason and CANNOT not in resp.reason

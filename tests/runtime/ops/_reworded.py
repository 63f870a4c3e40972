"""Helpers for the tests that the front-ends follow the refusal code, not the refusal's words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from runtime.core._gmp import CriticalAction
from runtime.ops import _signatures

# The words the front-ends used to look for: a refusal of another kind that happens to hold
# them (here in an unknown parameter's name) must not be taken for a want of signatures.
DECOY = "electronic signature(s)"
REWORDED = "Unterschriften fehlen"


def reword_signature_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan's refusal for missing signatures, reworded without any of the old words."""

    def reworded(rule: CriticalAction, got: int) -> str:
        return f"{REWORDED}: {len(rule.meanings)} nötig, {got} gegeben"

    monkeypatch.setattr(_signatures, "signatures_needed", reworded)


def base(user: str, n: int, token: str | None = None) -> dict[str, Any]:
    return {"id": f"w{n}", "ts": datetime.now(UTC), "user": user, "token": token}

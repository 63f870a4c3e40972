"""Electronic signatures on commands (21 CFR 11.50, 11.70, 11.100, 11.200).

How a critical command is signed:

1. The client sends the command with ``preview: true``. The runtime, between two cycles,
   builds the *content* the signers see (the command, its target's current value, the app
   and version, and a fresh single-use nonce) and answers its sha256, ``content_hash``.
2. Each signer re-enters their password and picks a meaning; the command is sent again
   (a new id) with ``signatures: [{user, password, meaning, content_hash}]``.
3. The command handler checks each password against the user store (a wrong one is refused,
   counted towards lockout and audited) and replaces the passwords by the manifestations
   (``SignedBy``: printed name, UTC time and clock source, meaning, content hash).
4. Between two cycles the runtime rebuilds the content with the nonce: if the value changed
   since it was shown the command is refused; the nonce is used up, so a signature cannot be
   copied to another command or replayed. The manifestations go into the command's audit
   record (itself signed and chained), and so into the batch record.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.core._gmp import CriticalAction, Meaning
from runtime.ops._refusal import RefusalCode

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = [
    "CHALLENGE_TTL_S",
    "SIGN_HOW",
    "RefusedError",
    "SignatureIn",
    "SignedBy",
    "canonical_hash",
    "check_signatures",
    "clock_source",
    "critical_rule",
    "manifestation",
    "preview",
    "signatures_needed",
]

CHALLENGE_TTL_S = 300.0  # a signer has five minutes between seeing and signing
_INVALID = RefusalCode.SIGNATURE_INVALID


# How to sign, the end of the refusal for want of signatures: a transport that cannot carry
# signatures (Sparkplug B) replaces it by saying so.
SIGN_HOW = (
    ". Send it with preview: true, then again with signatures over the content_hash (each "
    "signer's user id, password and meaning); nothing was done"
)


class RefusedError(Exception):
    """Raised while validating or applying a command; the message is the response's reason,
    ``code`` its machine-readable kind (None: none a front-end tells apart)."""

    def __init__(self, reason: str, code: RefusalCode | None = None) -> None:
        super().__init__(reason)
        self.code = code


class SignatureIn(BaseModel):
    """One signer's entry in a command: who, the password re-entered, meaning, what was shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str = Field(min_length=1, max_length=64)
    password: str = Field(max_length=256, repr=False)
    meaning: Meaning
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class SignedBy(BaseModel):
    """A verified signature's manifestation (11.50): set by the handler, never by the sender."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str
    printed_name: str
    role: str
    meaning: Meaning
    signed_at: str
    clock: str
    content_hash: str
    manifestation_hash: str


def canonical_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clock_source() -> str:
    """Where signature times come from; says whether the system clock is NTP-synchronised."""
    synced = os.path.exists("/run/systemd/timesync/synchronized")
    return "system clock, UTC" + (" (NTP synchronised)" if synced else " (sync not confirmed)")


def manifestation(
    *, user_id: str, printed_name: str, role: str, meaning: Meaning, content_hash: str
) -> SignedBy:
    """The manifestation of one verified signature, bound to the content by its hash."""
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    body = {
        "user_id": user_id,
        "printed_name": printed_name,
        "meaning": meaning,
        "signed_at": at,
        "content_hash": content_hash,
    }
    return SignedBy(
        **body,
        role=role,
        clock=clock_source(),
        manifestation_hash=canonical_hash(body),
    )


# ---------------------------------------------------------------------- on the scan thread
def _leaf(engine: ScanEngine, path: str) -> Any:
    acc = engine.app.tree.leaves().get(path)
    if acc is None:
        raise RefusedError(f"gmp: no state leaf {path!r} in this app (a during: condition)")
    owner, attr = acc
    return getattr(owner, attr)


def _target(cmd: Any) -> str | None:
    for key in ("name", "point", "block"):
        if hasattr(cmd, key):
            return str(getattr(cmd, key))
    return None


def current_value(engine: ScanEngine, cmd: Any) -> Any:
    """What the signer is shown as the value before the change."""
    app = engine.app
    if cmd.cmd == "set_parameter" and cmd.name in app.parameters:
        return app.parameters[cmd.name].value
    if cmd.cmd in ("force", "unforce") and cmd.point in app.image:
        # The forcing state, not the live value: a sensor's reading changes every cycle, so a
        # content holding it could never be signed; another force in between still changes it.
        point = app.image[cmd.point]
        return {"forced": point.forced, "forced_value": point.forced_value}
    if cmd.cmd in ("phase", "ack_alarm"):
        block = app.tree.find(cmd.block)
        return getattr(block, "STATE_NAME", None) or {"unacked": getattr(block, "UNACKED", None)}
    return engine.state.value


def critical_rule(engine: ScanEngine, cmd: Any) -> CriticalAction | None:
    """The first ``gmp.critical`` entry that applies to ``cmd`` now, or None."""
    gmp = engine.app.manifest.gmp
    if gmp is None:
        return None
    target = _target(cmd)
    for rule in gmp.critical:
        if rule.cmd != cmd.cmd or (rule.targets and target not in rule.targets):
            continue
        if rule.commands and str(cmd.command).strip().upper() not in rule.commands:
            continue
        if rule.during is not None and _leaf(engine, rule.during.path) not in rule.during.in_:
            continue
        return rule
    return None


def _content(engine: ScanEngine, cmd: Any, nonce: str) -> dict[str, Any]:
    fields = cmd.model_dump(
        mode="json", exclude={"id", "ts", "token", "role", "preview", "signatures", "signed"}
    )
    return {
        "app": engine.app.name,
        "version": engine.app.version,
        "command": fields,
        "current": current_value(engine, cmd),
        "nonce": nonce,
    }


class _Challenges:
    """Contents shown for signing, by hash, single use, for ``CHALLENGE_TTL_S``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: dict[str, tuple[str, float]] = {}  # content hash → (nonce, expiry)

    def issue(self, content_hash: str, nonce: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.open = {h: v for h, v in self.open.items() if v[1] > now}
            if len(self.open) >= 1000:
                self.open.pop(next(iter(self.open)))
            self.open[content_hash] = (nonce, now + CHALLENGE_TTL_S)

    def take(self, content_hash: str) -> str | None:
        with self.lock:
            entry = self.open.pop(content_hash, None)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]


_CHALLENGES: weakref.WeakKeyDictionary[Any, _Challenges] = weakref.WeakKeyDictionary()


def _challenges(engine: ScanEngine) -> _Challenges:
    found = _CHALLENGES.get(engine)
    if found is None:
        found = _CHALLENGES[engine] = _Challenges()
    return found


def preview(engine: ScanEngine, cmd: Any) -> dict[str, Any]:
    """The content to sign, its hash, and what the app requires (meanings) right now."""
    nonce = secrets.token_hex(16)
    content = _content(engine, cmd, nonce)
    digest = canonical_hash(content)
    _challenges(engine).issue(digest, nonce)
    rule = critical_rule(engine, cmd)
    return {
        "content": content,
        "content_hash": digest,
        "critical": rule is not None,
        "meanings": list(rule.meanings) if rule is not None else [],
        "expires_in_s": CHALLENGE_TTL_S,
    }


def signatures_needed(rule: CriticalAction, got: int) -> str:
    """The refusal's words when ``rule`` wants more signatures than the ``got`` given."""
    return (
        f"critical action ({rule.description or rule.cmd}): needs {len(rule.meanings)} "
        f"electronic signature(s) with meanings {', '.join(rule.meanings)}; got {got}{SIGN_HOW}"
    )


def check_signatures(engine: ScanEngine, cmd: Any) -> list[dict[str, Any]]:
    """The verified signatures as audit data; RefusedError when the app's rule is not met."""
    signed: list[SignedBy] = list(getattr(cmd, "signed", []) or [])
    rule = critical_rule(engine, cmd)
    if rule is not None and len(signed) < len(rule.meanings):
        raise RefusedError(signatures_needed(rule, len(signed)), RefusalCode.SIGNATURE_REQUIRED)
    if not signed:
        return []
    if rule is not None:
        given = [s.meaning for s in signed[: len(rule.meanings)]]
        if given != list(rule.meanings):
            raise RefusedError(
                f"signature meanings {given} do not match the required {list(rule.meanings)} "
                "(in order); nothing was done",
                _INVALID,
            )
    if len({s.user_id for s in signed}) != len(signed):
        raise RefusedError(
            "each signature must be by a different person (two-person rule)", _INVALID
        )
    hashes = {s.content_hash for s in signed}
    if len(hashes) != 1:
        raise RefusedError("the signatures are over different contents; nothing was done", _INVALID)
    digest = hashes.pop()
    nonce = _challenges(engine).take(digest)
    if nonce is None:
        raise RefusedError(
            "the signed content_hash was not shown by this runtime, expired, or was used "
            "already (a signature belongs to one command); preview again and re-sign",
            _INVALID,
        )
    now_hash = canonical_hash(_content(engine, cmd, nonce))
    if now_hash != digest:
        raise RefusedError(
            "the content changed since it was shown for signing (another change came first, "
            "or the command differs from the one previewed); nothing was done: preview again",
            _INVALID,
        )
    return [s.model_dump() for s in signed]

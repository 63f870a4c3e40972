"""The audit trail's Ed25519 signing key: where it lives, creating it once, loading and checking it.

Ed25519 rather than HMAC-SHA256: with HMAC whoever can *verify* a trail holds the secret and so
can also rewrite it, so a QA reviewer or an external auditor could not be handed the means to
check a trail without being handed the means to forge one. With Ed25519 the node keeps the
private key (0600) and anyone verifies with the public key, which is exported once (its id is
in every record and printed at creation) and kept with the validation documents. The cost is
the ``cryptography`` package and ~70 µs per signature (measured here), small next to the fsync
each record gets anyway.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runtime.core._files import read_regular

__all__ = [
    "KEY_ENV",
    "AuditKeyError",
    "SigningKey",
    "VerifyKey",
    "create_signing_key",
    "default_key_path",
    "load_signing_key",
    "load_verify_key",
]

KEY_ENV = "VPLC_AUDIT_KEY"  # path of the private key, over the default below
KEY_NAME = "audit-ed25519.pem"


class AuditKeyError(Exception):
    """The signing key is missing, unreadable, too open or not the trail's; says which."""


def default_key_path() -> Path:
    """``$VPLC_AUDIT_KEY``, else ``keys/audit-ed25519.pem`` in the state dir.

    The state dir is ``$VPLC_STATE_DIR`` (default ``~/.local/state/vplc``), where retain files
    live too. Not next to the trail: a reviewer who copies a trail must not copy its key.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    base = os.environ.get("VPLC_STATE_DIR") or Path.home() / ".local" / "state" / "vplc"
    return Path(base) / "keys" / KEY_NAME


def public_path(private: Path) -> Path:
    """Where the public half of ``private`` is written: same name, ``.pub``."""
    return private.with_suffix(".pub")


def key_id(raw_public: bytes) -> str:
    """A short name of a public key: the first 16 hex digits of its sha256."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


@dataclass(frozen=True)
class VerifyKey:
    """A public key and its id; ``verify`` says whether a signature over ``data`` holds."""

    key: Ed25519PublicKey
    id: str
    source: str

    @classmethod
    def from_public(cls, key: Ed25519PublicKey, source: str) -> VerifyKey:
        return cls(key, key_id(_raw(key)), source)

    @classmethod
    def from_b64(cls, text: str, source: str) -> VerifyKey:
        return cls.from_public(Ed25519PublicKey.from_public_bytes(base64.b64decode(text)), source)

    def b64(self) -> str:
        return base64.b64encode(_raw(self.key)).decode()

    def verify(self, signature_b64: str, data: bytes) -> bool:
        try:
            self.key.verify(base64.b64decode(signature_b64, validate=True), data)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """The private key of a trail writer, with its public half."""

    key: Ed25519PrivateKey
    public: VerifyKey
    path: Path

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.key.sign(data)).decode()


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def create_signing_key(path: Path) -> SigningKey:
    """Create a new key at ``path`` (0600, folder 0700) and its ``.pub``; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written whole to a private temporary name, then linked into place: link() fails if the
    # key exists, so two writers starting at once end up with one key, and nobody ever reads
    # a half-written one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return load_signing_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_path(path).write_bytes(pub)
    return SigningKey(key, VerifyKey.from_public(key.public_key(), str(path)), path)


def load_signing_key(path: Path) -> SigningKey:
    """Read a private key; refuse one that group or others may read (as ssh does)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"audit key {path}: cannot read: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(
            f"audit key {path}: mode {stat.S_IMODE(mode):o} lets other users read it; a "
            f"readable signing key lets them forge audit records. Run: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"audit key {path}: not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"audit key {path}: a {type(key).__name__}, expected Ed25519")
    return SigningKey(key, VerifyKey.from_public(key.public_key(), str(path)), path)


def load_verify_key(path: Path) -> VerifyKey:
    """A public key from a PEM file (public, or a private one whose public half is taken)."""
    try:  # a PEM key is a few hundred bytes; a FIFO or /dev/zero is not one
        data = read_regular(path, 1024 * 1024)
    except OSError as exc:
        raise AuditKeyError(f"key {path}: cannot read: {exc.strerror}") from None
    try:
        if b"PRIVATE KEY" in data:
            private = serialization.load_pem_private_key(data, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise AuditKeyError(f"key {path}: a {type(private).__name__}, expected Ed25519")
            return VerifyKey.from_public(private.public_key(), str(path))
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"key {path}: not a PEM Ed25519 key: {exc}") from None
    if not isinstance(public, Ed25519PublicKey):
        raise AuditKeyError(f"key {path}: a {type(public).__name__}, expected Ed25519")
    return VerifyKey.from_public(public, str(path))

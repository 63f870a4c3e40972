"""Password hashing with scrypt (standard library): self-describing strings, constant-time check.

A stored hash reads ``scrypt$N$r$p$salt_b64$hash_b64``, so the cost can be raised later
without invalidating the passwords already stored (each is checked with its own parameters).
scrypt is memory-hard (21 CFR 11.300: credentials that cannot be guessed offline at GPU speed),
and ``hashlib.scrypt`` needs no new dependency.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = [
    "DEFAULT_N",
    "DEFAULT_P",
    "DEFAULT_R",
    "MIN_N",
    "hash_parameters",
    "hash_password",
    "verify_password",
]

# N=2**15, r=8: 32 MiB and ~0.1 s per check on the reference VM, the cost a login can afford.
DEFAULT_N, DEFAULT_R, DEFAULT_P = 2**15, 8, 1
MIN_N = 2**12  # below this a hash is too cheap to be worth storing (tests use 2**14)
_SALT_BYTES, _KEY_BYTES = 16, 32
_PREFIX = "scrypt"
# A verification against an unknown user still costs one scrypt, so timing does not tell
# whether the user exists; this is the hash it runs against.
_DUMMY_SALT = b"vplc-no-such-user"


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * r * (n + p + 2) + 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """A fresh salt and the scrypt of ``password``, as ``scrypt$N$r$p$salt$hash``."""
    if n < MIN_N or n & (n - 1):
        raise ValueError(f"scrypt N must be a power of two >= {MIN_N}, got {n}")
    if not 1 <= r <= 64 or not 1 <= p <= 16:
        raise ValueError(f"scrypt r must be 1..64 and p 1..16, got r={r} p={p}")
    salt = os.urandom(_SALT_BYTES)
    secret = password.encode("utf-8")
    mem = _maxmem(n, r, p)
    key = hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, dklen=_KEY_BYTES, maxmem=mem)
    return f"{_PREFIX}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def hash_parameters(stored: str) -> tuple[int, int, int] | None:
    """``(N, r, p)`` of a stored hash, or None when it is not one of ours."""
    parsed = _parse(stored)
    return None if parsed is None else parsed[:3]


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    if n < MIN_N or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or not salt or not key:
        return None
    if n > 2**20:  # a hash file edited to make every login cost gigabytes: not ours
        return None
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; a malformed ``stored`` is simply False.

    The comparison is constant-time (``hmac.compare_digest``); a malformed hash still costs
    one scrypt at the default cost, so a caller's timing does not reveal which case it was.
    """
    parsed = _parse(stored)
    if parsed is None:
        n, r, p, salt, expected = DEFAULT_N, DEFAULT_R, DEFAULT_P, _DUMMY_SALT, b"\0" * _KEY_BYTES
    else:
        n, r, p, salt, expected = parsed
    key = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=len(expected),
        maxmem=_maxmem(n, r, p),
    )
    return hmac.compare_digest(key, expected) and parsed is not None

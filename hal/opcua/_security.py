"""Security policy names (as in vplc's YAML) and a self-made application certificate."""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path
from typing import Literal

from asyncua import ua
from asyncua.crypto import cert_gen
from asyncua.crypto.security_policies import (
    SecurityPolicy,
    SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicyAes256Sha256RsaPss,
    SecurityPolicyBasic256Sha256,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = [
    "CLIENT_POLICIES",
    "SERVER_POLICIES",
    "PolicyName",
    "ensure_certificate",
    "keep_certificate",
]

# Basic128Rsa15 and Basic256 (SHA-1) are deprecated by the OPC Foundation: not offered.
PolicyName = Literal["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "None"]
CLIENT_POLICIES: dict[str, type[SecurityPolicy]] = {
    "Basic256Sha256": SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": SecurityPolicyAes256Sha256RsaPss,
}
SERVER_POLICIES: dict[str, ua.SecurityPolicyType] = {
    "Basic256Sha256": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    "Aes128_Sha256_RsaOaep": ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
    "Aes256_Sha256_RsaPss": ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
    "None": ua.SecurityPolicyType.NoSecurity,
}
_VALID_DAYS = 730
_RENEW_BEFORE = datetime.timedelta(days=30)


def _usable(path: Path, app_uri: str) -> bool:
    try:
        cert = x509.load_der_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    if app_uri not in names.get_values_for_type(x509.UniformResourceIdentifier):
        return False
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return left > _RENEW_BEFORE


def ensure_certificate(
    folder: Path, *, app_uri: str, name: str, client: bool
) -> tuple[Path, Path, bool]:
    """``(cert.der, key.pem, made)``: kept while valid for ``app_uri``, else (re)made.

    The key is made once and kept (a peer that trusted the certificate sees the same key
    after a renewal); the certificate names ``app_uri`` in its subjectAltName, as OPC UA
    asks, and is renewed 30 days before it expires. Raises OSError if the folder cannot
    be written.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = folder / "cert.der", folder / "key.pem"
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    made = keep_certificate(cert_path, key_path, app_uri=app_uri, subject=name, usages=[usage])
    return cert_path, key_path, made is not None


def keep_certificate(
    cert_path: Path,
    key_path: Path,
    *,
    app_uri: str,
    subject: str,
    usages: list[x509.ObjectIdentifier],
) -> x509.Certificate | None:
    """The RSA key at ``key_path`` (made once, 0600, then kept) and a self-signed certificate
    at ``cert_path`` for ``app_uri`` (its subjectAltName, with this host), named
    ``<subject>@<host>``, with extended key ``usages``: kept while valid for ``app_uri`` and
    not within 30 days of its end, else (re)made. Returns the new certificate, None if kept.
    Raises OSError if the key is not RSA or the folder cannot be written."""
    if key_path.exists():
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise OSError(f"{key_path}: not an RSA private key")
        key = loaded
    else:
        key = cert_gen.generate_private_key()
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(cert_gen.dump_private_key_as_pem(key))
    if _usable(cert_path, app_uri):
        return None
    host = socket.gethostname()
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        f"{subject}@{host}",
        {"organizationName": "vplc"},
        [x509.UniformResourceIdentifier(app_uri), x509.DNSName(host)],
        extended=usages,
        days=_VALID_DAYS,
    )
    tmp = cert_path.with_suffix(".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    os.replace(tmp, cert_path)
    return cert

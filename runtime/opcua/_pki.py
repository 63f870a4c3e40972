"""The server's application instance certificate: made at first start, kept in the state dir."""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path

import structlog
from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = ["ServerCertificate", "ensure_certificate"]

_VALID_DAYS = 730
_RENEW_BEFORE = datetime.timedelta(days=30)
_log = structlog.get_logger("vplc.opcua")


class ServerCertificate:
    """Paths of the DER certificate and the PEM private key (0600) of one app's server."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cert = folder / "server-cert.der"
        self.key = folder / "server-key.pem"
        # Where clients' certificates would be kept, as UA servers lay out a PKI folder.
        self.trusted = folder / "trusted"
        self.rejected = folder / "rejected"


def _usable(path: Path, app_uri: str) -> bool:
    try:
        cert = x509.load_der_x509_certificate(path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    if app_uri not in names.get_values_for_type(x509.UniformResourceIdentifier):
        return False
    now = datetime.datetime.now(datetime.UTC)
    return cert.not_valid_after_utc - now > _RENEW_BEFORE


def ensure_certificate(folder: Path, *, app_uri: str, app_name: str) -> ServerCertificate:
    """Keep the certificate while it is valid for ``app_uri``; else make key and certificate.

    The key is generated once and kept (clients that trusted the certificate see the same
    key after a renewal); the certificate is renewed 30 days before it expires or when the
    application URI changed. Raises OSError when the folder cannot be written.
    """
    paths = ServerCertificate(folder)
    for sub in (folder, paths.trusted, paths.rejected):
        sub.mkdir(parents=True, exist_ok=True, mode=0o700)
    if paths.key.exists():
        loaded = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise OSError(f"{paths.key}: not an RSA private key")
        key = loaded
    else:
        key = cert_gen.generate_private_key()
        fd = os.open(paths.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(cert_gen.dump_private_key_as_pem(key))
    if _usable(paths.cert, app_uri):
        return paths
    host = socket.gethostname()
    cert = cert_gen.generate_self_signed_app_certificate(
        key,
        f"vplc {app_name}@{host}",
        {"organizationName": "vplc"},
        [x509.UniformResourceIdentifier(app_uri), x509.DNSName(host)],
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=_VALID_DAYS,
    )
    tmp = paths.cert.with_suffix(".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    os.replace(tmp, paths.cert)
    _log.info(
        "opcua_certificate_created",
        path=str(paths.cert),
        app_uri=app_uri,
        thumbprint=cert.fingerprint(hashes.SHA1()).hex(),
        valid_days=_VALID_DAYS,
    )
    return paths

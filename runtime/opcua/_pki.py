"""The server's application instance certificate: made at first start, kept in the state dir."""

from __future__ import annotations

from pathlib import Path

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from hal.opcua import keep_certificate

__all__ = ["ServerCertificate", "ensure_certificate"]

_VALID_DAYS = 730
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


def ensure_certificate(folder: Path, *, app_uri: str, app_name: str) -> ServerCertificate:
    """Keep the certificate while it is valid for ``app_uri``; else make key and certificate.

    The key is generated once and kept (clients that trusted the certificate see the same
    key after a renewal); the certificate is renewed 30 days before it expires or when the
    application URI changed. Raises OSError when the folder cannot be written.
    """
    paths = ServerCertificate(folder)
    for sub in (folder, paths.trusted, paths.rejected):
        sub.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert = keep_certificate(
        paths.cert,
        paths.key,
        app_uri=app_uri,
        subject=f"vplc {app_name}",
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    if cert is None:
        return paths
    _log.info(
        "opcua_certificate_created",
        path=str(paths.cert),
        app_uri=app_uri,
        thumbprint=cert.fingerprint(hashes.SHA1()).hex(),
        valid_days=_VALID_DAYS,
    )
    return paths

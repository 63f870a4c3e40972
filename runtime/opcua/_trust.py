"""Which client applications may open a session: the trust list folder, rejected ones kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import structlog
from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["TrustList"]

_log = structlog.get_logger("vplc.opcua")


class TrustList:
    """A certificate validator over ``trusted/`` and ``rejected/``, as UA servers keep them.

    A client's application certificate must be valid now, name the client's ApplicationUri
    and be in ``trusted/`` (DER or PEM, compared exactly; read at every new session, so a
    certificate moved there counts at once). An unknown one is refused with
    BadCertificateUntrusted and written to ``rejected/``: an administrator who recognises
    the client moves that file to ``trusted/``.
    """

    def __init__(self, trusted: Path, rejected: Path) -> None:
        self.trusted, self.rejected = trusted, rejected
        self._basic = CertificateValidator(
            CertificateValidatorOptions.BASIC_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
        )

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        await self._basic.validate(cert, app)  # time range and ApplicationUri
        der = cert.public_bytes(Encoding.DER)
        if der in self._trusted_certificates():
            return
        thumb = hashlib.sha1(der, usedforsecurity=False).hexdigest()
        uri = "".join(c if c.isalnum() or c in "-_." else "_" for c in app.ApplicationUri or "")
        path = self.rejected / f"{uri[:80]}-{thumb[:16]}.der"
        try:
            if not path.exists():
                path.write_bytes(der)
        except OSError as exc:
            _log.error("opcua_rejected_write_failed", path=str(path), error=exc.strerror)
        _log.warning(
            "opcua_client_certificate_rejected",
            application_uri=app.ApplicationUri,
            thumbprint=thumb,
            path=str(path),
            hint=f"to admit this client, move the file to {self.trusted}/",
        )
        raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    def _trusted_certificates(self) -> set[bytes]:
        found: set[bytes] = set()
        for path in sorted(self.trusted.glob("*")):
            try:
                data = path.read_bytes()
                if b"-----BEGIN CERTIFICATE-----" in data:
                    cert = x509.load_pem_x509_certificate(data)
                else:
                    cert = x509.load_der_x509_certificate(data)
            except (OSError, ValueError) as exc:
                _log.warning("opcua_trusted_unreadable", path=str(path), error=str(exc))
                continue
            found.add(cert.public_bytes(Encoding.DER))
        return found

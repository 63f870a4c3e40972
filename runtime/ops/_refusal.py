"""Machine-readable kinds of command refusal, carried next to the human reason in each answer."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RefusalCode"]


class RefusalCode(StrEnum):
    """Why a command was refused, for a program to act on (``CommandResponse.code``).

    The reason text is for people and may be reworded; a front-end decides on this code
    (the web HMI opens its signing dialog on ``SIGNATURE_REQUIRED``, Sparkplug explains that
    a DCMD cannot be signed, HTTP 403/422/429 and OPC UA status codes follow it). Only the
    kinds a front-end tells apart have a code; any other refusal answers ``code: null``.
    """

    # The app's gmp.critical rule wants (more) e-signatures: preview, sign, send again.
    SIGNATURE_REQUIRED = "signature_required"
    # Signatures were given but are not accepted: a wrong password, a signer without the
    # role, the two-person rule, meanings, content changed/expired/used since the preview.
    SIGNATURE_INVALID = "signature_invalid"
    # The sender's role may not run this command (the access file's permissions).
    NOT_PERMITTED = "not_permitted"
    # The value is not one the target takes: a parameter's type/min/max, a point's range.
    OUT_OF_LIMITS = "out_of_limits"
    # The user's or the runtime's command rate is exceeded; send it again later.
    RATE_LIMITED = "rate_limited"

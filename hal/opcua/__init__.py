"""OPC UA pieces shared by the ``opcua`` driver and ``vplc sim serve --protocol opcua``.

Only this sub-package of ``hal`` may use asyncua (and cryptography, which asyncua's
security policies use): ``import hal`` does not load it. The runtime's own server
(``runtime.opcua``) keeps its access-file sessions; what is here is what a client and a
plain device-like server both need: the security policy names, a self-made application
certificate, a variable server.
"""

from __future__ import annotations

from hal.opcua._security import (
    CLIENT_POLICIES,
    SERVER_POLICIES,
    PolicyName,
    ensure_certificate,
    keep_certificate,
)
from hal.opcua._server import VariableServer, VarSpec

__all__ = [
    "CLIENT_POLICIES",
    "SERVER_POLICIES",
    "PolicyName",
    "VarSpec",
    "VariableServer",
    "ensure_certificate",
    "keep_certificate",
]

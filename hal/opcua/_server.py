"""A plain OPC UA server of flat variables, as a field device offers them (asyncua)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua

from hal.opcua._security import SERVER_POLICIES, PolicyName, ensure_certificate

__all__ = ["VarSpec", "VariableServer"]

_KINDS = {"bool": ua.VariantType.Boolean, "float": ua.VariantType.Double,
          "string": ua.VariantType.String}  # fmt: skip
_ZERO = {"bool": False, "float": 0.0, "string": ""}


@dataclass(frozen=True)
class VarSpec:
    """One variable: ``Objects/<folder>/<name>``, NodeId ``ns=<idx>;s=<name>``."""

    name: str
    kind: str  # bool | float | string
    writable: bool = False
    description: str = ""


class VariableServer:
    """Variables under one folder; sensors set by the owner, actuators written by clients.

    Secure like the runtime's server: SignAndEncrypt endpoints for the given policies (``None``
    only when listed), an application certificate made at first start in ``pki_dir``. Being
    a stand-in for a device on a test bench, it accepts any client certificate and anonymous
    sessions (the host is 127.0.0.1 unless told otherwise).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        namespace_uri: str,
        folder: str,
        variables: Sequence[VarSpec],
        pki_dir: Path,
        policies: Sequence[PolicyName] = ("Basic256Sha256",),
    ) -> None:
        self.endpoint = endpoint
        self.namespace_uri = namespace_uri
        self.folder = folder
        self.specs = list(variables)
        self.vtypes = {s.name: _KINDS[s.kind] for s in self.specs}
        self.pki_dir = pki_dir
        self.policies = list(policies)
        self.server = Server()
        self.idx = 0
        self.nodes: dict[str, ua.NodeId] = {}
        self.last_written: dict[str, Any] = {}

    async def start(self) -> None:
        """Build the address space and listen; raises OSError if the port is taken."""
        logging.getLogger("asyncua").setLevel(logging.ERROR)
        server = self.server
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"vplc {self.folder}")
        app_uri = f"{self.namespace_uri}:server"
        await server.set_application_uri(app_uri)
        if any(p != "None" for p in self.policies):
            cert, key, _ = ensure_certificate(
                self.pki_dir, app_uri=app_uri, name=f"vplc {self.folder}", client=False
            )
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
        server.set_security_policy([SERVER_POLICIES[p] for p in self.policies])
        self.idx = await server.register_namespace(self.namespace_uri)
        parent = await server.nodes.objects.add_folder(
            ua.NodeId(ua.String(self.folder), ua.Int16(self.idx)),
            ua.QualifiedName(self.folder, self.idx),
        )
        for spec in self.specs:
            await self._add(parent, spec)
        await server.start()

    async def _add(self, parent: Node, spec: VarSpec) -> None:
        vtype = _KINDS[spec.kind]
        node = await parent.add_variable(
            ua.NodeId(ua.String(spec.name), ua.Int16(self.idx)),
            ua.QualifiedName(spec.name, self.idx),
            ua.Variant(_ZERO[spec.kind], vtype),
            datatype=ua.NodeId(ua.Int32(vtype.value)),
        )
        if spec.writable:
            await node.set_writable(True)
        if spec.description:
            await node.write_attribute(
                ua.AttributeIds.Description,
                ua.DataValue(ua.Variant(ua.LocalizedText(spec.description))),
            )
        self.nodes[spec.name] = node.nodeid

    async def stop(self) -> None:
        await self.server.stop()

    async def set(self, name: str, value: Any, *, good: bool = True) -> None:
        """A sensor's new reading (``good=False``: Bad, no value), source-stamped now."""
        code = ua.StatusCodes.Good if good else ua.StatusCodes.BadSensorFailure
        status = ua.StatusCode(ua.UInt32(code))
        vtype = self.vtypes[name] if good else ua.VariantType.Null
        variant = ua.Variant(value if good else None, vtype)
        now: Any = datetime.now(UTC)  # ua.DateTime is a datetime subclass in the stubs
        dv = ua.DataValue(variant, StatusCode=status, SourceTimestamp=now, ServerTimestamp=now)
        await self.server.write_attribute_value(self.nodes[name], dv)

    def written(self, name: str) -> Any:
        """A writable variable's current value; a NaN or ±inf a client wrote is not taken
        (the last finite one stays)."""
        dv = self.server.read_attribute_value(self.nodes[name])
        value = None if dv.Value is None else dv.Value.Value
        if isinstance(value, float) and not math.isfinite(value):
            return self.last_written.get(name)
        self.last_written[name] = value
        return value

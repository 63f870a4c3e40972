"""An OPC UA device for driver tests: hal.opcua's VariableServer on its own thread and loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from asyncua import ua

from hal.opcua import PolicyName, VariableServer, VarSpec
from tests.mqtt.broker import free_port

__all__ = ["NS", "OpcuaDevice"]

NS = "urn:vplc:test:device"
T = TypeVar("T")
VARS = [
    VarSpec("temp", "float"),
    VarSpec("level", "float"),
    VarSpec("running", "bool"),
    VarSpec("name", "string"),
    VarSpec("valve", "float", writable=True),
    VarSpec("pump", "bool", writable=True),
]


class OpcuaDevice:
    """Serves VARS at ``opc.tcp://127.0.0.1:<port>/dev`` until ``close``; restartable."""

    def __init__(
        self, pki: Path, *, port: int | None = None, policies: tuple[PolicyName, ...] = (
            "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "None")
    ) -> None:  # fmt: skip
        self.port = port or free_port()
        self.pki = pki
        self.policies = policies
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/dev"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: VariableServer | None = None
        self.variables = list(VARS)
        self.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.server = VariableServer(
            endpoint=self.endpoint, namespace_uri=NS, folder="dev", variables=self.variables,
            pki_dir=self.pki, policies=self.policies,
        )  # fmt: skip
        self.call(self.server.start())

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.stop())
            self.server = None

    def set(self, name: str, value: Any, *, good: bool = True) -> None:
        assert self.server is not None
        self.call(self.server.set(name, value, good=good))

    def set_status(self, name: str, value: float, code: int) -> None:
        """A value with any StatusCode (e.g. UncertainLastUsableValue)."""
        assert self.server is not None
        server = self.server

        async def write() -> None:
            now: Any = datetime.now(UTC)
            status = ua.StatusCode(ua.UInt32(code))
            variant = ua.Variant(value, ua.VariantType.Double)
            dv = ua.DataValue(variant, StatusCode=status, SourceTimestamp=now)
            await server.server.write_attribute_value(server.nodes[name], dv)

        self.call(write())

    def value(self, name: str) -> Any:
        assert self.server is not None
        dv = self.server.server.read_attribute_value(self.server.nodes[name])
        return None if dv.Value is None else dv.Value.Value

    def node(self, name: str) -> str:
        return f"nsu={NS};s={name}"

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

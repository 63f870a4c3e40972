"""OPC UA fixtures: `vplc run bioreactor --opcua` in real time, and a secured asyncua client."""

from __future__ import annotations

import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import (
    SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicyAes256Sha256RsaPss,
    SecurityPolicyBasic256Sha256,
)
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests._runs import VPLC, VplcRun, server_config, spawn, stop_run, wait_listening
from tests.conftest import TOKENS, write_access
from tests.mqtt.broker import free_port

__all__ = ["VPLC", "stop_run"]  # re-exported for the tests of this folder

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "plc_apps" / "bioreactor"
NAMESPACE = "urn:vplc:bioreactor"
PASSWORDS = TOKENS  # the token users' secrets are their OPC UA passwords
POLICIES = {
    "Basic256Sha256": SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": SecurityPolicyAes256Sha256RsaPss,
}


class Run(VplcRun):
    """A `vplc run` subprocess serving OPC UA, with where it keeps its files."""

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/vplc"


def start_run(
    folder: Path,
    *,
    extra: dict[str, Any] | None = None,
    duration: int = 120,
    args: tuple[str, ...] = (),
    commands: dict[str, Any] | None = None,
    trust: tuple[Path, ...] = (),
    app: Path = APP,
) -> Run:
    """Start the run; ``trust``: client certificates put in the server's trust list first."""
    folder.mkdir(parents=True, exist_ok=True)
    write_access(folder, commands=commands or {})
    app_name = yaml.safe_load((app / "app.yaml").read_text())["name"]
    trusted = folder / "state" / "opcua" / app_name / "trusted"
    trusted.mkdir(parents=True, exist_ok=True)
    for cert in trust:
        shutil.copy(cert, trusted / cert.name)
    port = free_port()
    cfg = server_config(port, extra or {})
    (folder / "opcua.yaml").write_text(yaml.safe_dump(cfg))
    run_args = [str(app), "--opcua", str(folder / "opcua.yaml"), "--no-view"]
    proc, log = spawn(folder, [*run_args, "--cold", "--duration", str(duration), *args])
    run = Run(proc, port, folder, log)
    wait_listening(run, "OPC UA server")
    return run


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, client_cert: tuple[Path, Path]
) -> Iterator[Run]:
    """The bioreactor in real time with the OPC UA server (one run for a test module); the
    test client's certificate is in its trust list."""
    run = start_run(tmp_path_factory.mktemp("opcua"), trust=(client_cert[0],))
    yield run
    stop_run(run)


@pytest.fixture(scope="session")
def client_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("client-pki")
    key, cert = folder / "client-key.pem", folder / "client-cert.der"
    import asyncio

    asyncio.run(
        setup_self_signed_certificate(
            key,
            cert,
            "urn:vplc:test-client",
            socket.gethostname(),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "vplc test client"},
        )
    )
    return cert, key


@asynccontextmanager
async def ua_client(
    run: Run,
    cert: tuple[Path, Path],
    user: str | None = "olga",
    *,
    password: str | None = None,
    policy: str = "Basic256Sha256",
) -> AsyncIterator[Client]:
    """A client session under SignAndEncrypt with a user name login (None: anonymous)."""
    client = Client(run.url, timeout=10)
    client.application_uri = "urn:vplc:test-client"
    client.session_timeout = 30_000
    if user is not None:
        client.set_user(user)
        client.set_password(password if password is not None else PASSWORDS[user])
    await client.set_security(
        POLICIES[policy], str(cert[0]), str(cert[1]), mode=ua.MessageSecurityMode.SignAndEncrypt
    )
    async with client:
        yield client


async def ns(client: Client) -> int:
    return int(await client.get_namespace_index(NAMESPACE))


def node(client: Client, idx: int, path: str) -> Any:
    return client.get_node(ua.NodeId(path, idx))

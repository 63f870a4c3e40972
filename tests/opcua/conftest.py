"""OPC UA fixtures: `vplc run bioreactor --opcua` in real time, and a secured asyncua client."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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

from runtime.ops._access import hash_token
from tests.mqtt.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "plc_apps" / "bioreactor"
VPLC = str(Path(sys.executable).with_name("vplc"))
NAMESPACE = "urn:vplc:bioreactor"
PASSWORDS = {"olga": "op-secret", "erik": "eng-secret", "vera": "view-secret"}
ROLES = {"olga": "operator", "erik": "engineer", "vera": "viewer"}
POLICIES = {
    "Basic256Sha256": SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": SecurityPolicyAes256Sha256RsaPss,
}


def write_access(folder: Path, commands: dict[str, Any] | None = None) -> Path:
    users = {
        name: {"role": ROLES[name], "token_sha256": hash_token(pw)}
        for name, pw in PASSWORDS.items()
    }
    path = folder / "access.yaml"
    path.write_text(yaml.safe_dump({"users": users, "commands": commands or {}}))
    return path


@dataclass
class Run:
    """A `vplc run` subprocess serving OPC UA, with where it keeps its files."""

    proc: subprocess.Popen[str]
    port: int
    folder: Path
    log: Path

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/vplc"

    def audit(self) -> list[dict[str, Any]]:
        path = self.folder / "audit.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]


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
    write_access(folder, commands)
    app_name = yaml.safe_load((app / "app.yaml").read_text())["name"]
    trusted = folder / "state" / "opcua" / app_name / "trusted"
    trusted.mkdir(parents=True, exist_ok=True)
    for cert in trust:
        shutil.copy(cert, trusted / cert.name)
    port = free_port()
    cfg = {
        "host": "127.0.0.1",
        "port": port,
        "access_file": "access.yaml",
        "audit_file": "audit.jsonl",
        "sample_ms": 50,
        **(extra or {}),
    }
    (folder / "opcua.yaml").write_text(yaml.safe_dump(cfg))
    log = folder / "run.log"
    env = {**os.environ, "VPLC_STATE_DIR": str(folder / "state")}
    cmd = [VPLC, "run", str(app), "--opcua", str(folder / "opcua.yaml"), "--no-view"]
    cmd += ["--cold", "--duration", str(duration), *args]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    run = Run(proc, port, folder, log)
    _wait_listening(run, timeout=60)
    return run


def _wait_listening(run: Run, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            raise RuntimeError(f"vplc run exited {run.proc.returncode}:\n{run.log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", run.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no OPC UA server on port {run.port}:\n{run.log.read_text()}")


def stop_run(run: Run) -> str:
    run.proc.terminate()
    try:
        run.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        run.proc.wait()
    return run.log.read_text()


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

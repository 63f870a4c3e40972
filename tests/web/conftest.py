"""Web HMI fixtures: `vplc run bioreactor --web-config` in real time, and logged-in HTTP clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from runtime.ops._access import hash_token
from runtime.ops._users import PasswordPolicy, UserStore
from tests._runs import VPLC, VplcRun, server_config, spawn, stop_run, wait_listening
from tests.mqtt.broker import free_port

__all__ = ["VPLC", "stop_run"]  # re-exported for the tests of this folder

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "plc_apps" / "bioreactor"
# vera is locked out by the login test; vic is the viewer of the other tests. olga, erik and
# quinn are personal accounts of the user store, so they can sign (the bioreactor's force needs
# two engineers: erik performs, quinn approves); vera and vic are token users of the access file.
PASSWORDS = {
    "olga": "op-secret",
    "erik": "eng-secret",
    "quinn": "qa-secret-1",
    "vera": "view-secret",
    "vic": "vic-secret",
}
ROLES = {
    "olga": "operator",
    "erik": "engineer",
    "quinn": "engineer",
    "vera": "viewer",
    "vic": "viewer",
}
SIGNERS = {"olga": "Olga Petrova", "erik": "Erik Lund", "quinn": "Quinn Baker"}


class Run(VplcRun):
    """A `vplc run --web-config` subprocess, with where it keeps its files."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_run(
    folder: Path, *, extra: dict[str, Any] | None = None, app: Path = APP, duration: int = 300
) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    tokens = {n: pw for n, pw in PASSWORDS.items() if n not in SIGNERS}
    users = {n: {"role": ROLES[n], "token_sha256": hash_token(pw)} for n, pw in tokens.items()}
    make_store(folder / "users.json")
    access = {"users": users, "user_store": "users.json"}
    (folder / "access.yaml").write_text(yaml.safe_dump(access))
    port = free_port()
    cfg = server_config(port, {"login_failures": 3, **(extra or {})})
    (folder / "web.yaml").write_text(yaml.safe_dump(cfg))
    args = [str(app), "--web-config", str(folder / "web.yaml"), "--no-view"]
    proc, log = spawn(folder, [*args, "--cold", "--duration", str(duration)])
    run = Run(proc, port, folder, log)
    wait_listening(run, "web HMI")
    return run


def make_store(path: Path) -> None:
    """The signers' store: printed names, no ageing; the cheapest scrypt cost (test speed)."""
    policy = PasswordPolicy(min_length=8, min_classes=2, max_age_days=0, kdf_n=2**14)
    store = UserStore.load(path, create=True, policy=policy)
    for user_id, name in SIGNERS.items():
        store.add(
            user_id,
            printed_name=name,
            role=ROLES[user_id],
            password=PASSWORDS[user_id],
            now_s=time.time(),
            by="test-setup",
            must_change=False,
        )


def login(run: Run, user: str, password: str | None = None) -> httpx.Client:
    """A client with the session cookie and the CSRF header of ``user``'s login."""
    client = httpx.Client(base_url=run.url, timeout=10)
    r = client.post("/api/login", json={"user": user, "password": password or PASSWORDS[user]})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    return client


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The bioreactor in real time with the web HMI (one run for a test module)."""
    run = start_run(tmp_path_factory.mktemp("web"))
    yield run
    stop_run(run)


def preview(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The write previewed: what the signing dialog shows (content, hash, rule)."""
    r = client.post(path, json={**body, "preview": True})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "preview"
    sign: dict[str, Any] = r.json()["sign"]
    return sign


def signatures(sign: dict[str, Any], *signers: str, **passwords: str) -> list[dict[str, str]]:
    """One entry per signer, meanings in the rule's order; ``passwords`` override the right one."""
    return [
        {
            "user": user,
            "password": passwords.get(user, PASSWORDS[user]),
            "meaning": meaning,
            "content_hash": sign["content_hash"],
        }
        for user, meaning in zip(signers, sign["rule"]["meanings"], strict=True)
    ]


def signed(client: httpx.Client, path: str, body: dict[str, Any], *signers: str) -> httpx.Response:
    """Preview, then send signed by ``signers`` (the first is the logged-in sender)."""
    sign = preview(client, path, body)
    return client.post(path, json={**body, "signatures": signatures(sign, *signers)})

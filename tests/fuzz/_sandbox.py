"""The records fuzz kinds' sandbox: a real user store, access file, audit trail and batch record.

Built once (``pristine``), copied fresh for every example (``sandbox``), and the commands run
in it with the sandbox's state folder and the example's passwords (``run_in``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import yaml

from tests.fuzz._harness import Case, check, run_inproc

PW = "Correct-Horse-7"
NEW = "Fresh-Pass-4567"
BIOREACTOR = Path(__file__).parents[2] / "plc_apps" / "bioreactor"


@contextmanager
def env(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@cache
def pristine() -> Path:
    """The sandbox every example copies: good files, damaged files, special files."""
    from runtime.host.cli import main
    from runtime.ops._users import PasswordPolicy, UserStore

    root = Path(tempfile.mkdtemp(prefix="vplc-fuzz-ops-"))
    with env(VPLC_STATE_DIR=str(root / "state"), VPLC_AUDIT_KEY=None, VPLC_USERS=None):
        store = UserStore.load(root / "users.json", create=True, policy=PasswordPolicy(kdf_n=2**14))
        for uid, role in (("jadmin", "engineer"), ("op1", "operator")):
            now = time.time()
            store.add(uid, printed_name=uid, role=role, password="Temp-Pass-123", now_s=now, by="t")
            store.change_password(uid, "Temp-Pass-123", PW, now_s=time.time())
        (root / "access.yaml").write_text(yaml.safe_dump({"user_store": "users.json"}))
        with env(VPLC_PASSWORD=PW, VPLC_NEW_PASSWORD="Temp-Pass-123"):
            argv = ["users", "add", "op2", "--name", "Op Two", "--role", "operator"]
            argv += ["--store", str(root / "users.json"), "--audit", str(root / "trail.jsonl")]
            assert main([*argv, "--as", "jadmin"]) == 0
        run = ["run", str(BIOREACTOR), "--virtual", "--duration", "600", "--no-view"]
        assert main([*run, "--batch-dir", str(root / "batches")]) == 0
    key = root / "state" / "keys" / "audit-ed25519.pem"
    shutil.copy(key, root / "key.pem")
    trail = (root / "trail.jsonl").read_text()
    (root / "tampered.jsonl").write_text(trail.replace("Op Two", "Op 2"))
    (root / "garbage.jsonl").write_bytes(b"\xff\xfe{not json\n" + b"[" * 100_000 + b"\n{}\n")
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "latin1.json").write_bytes('{"users": {"é": 1}}'.encode("latin-1"))
    (root / "bad_access.yaml").write_text("user_store: [1, 2\n")
    (root / "bad_key.pem").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
    bad = root / "bad_batches"
    bad.mkdir()
    (bad / "BR-20250101-001.json").write_text("{not json")
    (bad / "BR-20250101-002.json").write_text("[" * 100_000 + "]" * 100_000)
    (bad / "BR-20250101-003.json").write_text('{"header": 1, "summary": []}')
    good = next((root / "batches").glob("*.json"))
    (bad / "BR-20250101-004.json").write_text(good.read_text().replace("FILL", "FAIL"))
    (root / "file").write_text("x")
    (root / "folder").mkdir()
    return root


@contextmanager
def sandbox() -> Iterator[Path]:
    """A fresh copy of the pristine sandbox (FIFO and links made anew), removed after."""
    parent = Path(tempfile.mkdtemp(prefix="vplc-fuzz-ops-ex-"))
    root = parent / "s"
    shutil.copytree(pristine(), root, symlinks=True)
    os.mkfifo(root / "fifo")
    (root / "zero").symlink_to("/dev/zero")
    try:
        yield root
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def run_in(root: Path, case: Case, password: str | None, new: str | None) -> None:
    """Check ``case`` run in-process in sandbox ``root``: its own state folder (keys, seen
    ids), the passwords from the environment, no user store or audit key from outside."""
    with env(
        VPLC_STATE_DIR=str(root / "state"),
        VPLC_PASSWORD=password,
        VPLC_NEW_PASSWORD=new,
        VPLC_USERS=None,
        VPLC_AUDIT_KEY=None,
    ):
        check(case, run_inproc(case.argv, 30.0))

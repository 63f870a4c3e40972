"""The signed audit trail: every kind of tampering is caught by `vplc audit verify`, by name."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from runtime.host.cli import _parser
from runtime.ops._audit import AuditError, AuditKeyError, AuditLog, verify_audit_log
from runtime.ops._audit_format import GENESIS, encode, line_hash, signed_bytes
from runtime.ops._audit_key import key_id

VPLC = str(Path(sys.executable).with_name("vplc"))


def _trail(folder: Path, n: int = 20) -> Path:
    path = folder / "audit.jsonl"
    log = AuditLog(path, fsync=False)
    for i in range(n):
        user = "olga" if i % 2 else "erik"
        log.append("command", user=user, cmd="set_parameter", target="gain", old=i, new=i + 1)
    return path


def main(argv: list[str]) -> int:
    """`vplc audit ...` in this process: the CLI's parser and handler, without its logging
    set-up (which would bind the log to pytest's captured stdout of one test)."""
    args = _parser().parse_args(argv)
    return int(args.func(args))


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(x + b"\n" for x in lines))


def _resign(lines: list[bytes], key: Ed25519PrivateKey | None) -> list[bytes]:
    """What a forger without the node's key can do: rebuild the chain, signed by another key
    (or not at all), with every hash consistent."""
    out, prev = [], GENESIS
    kid = ""
    if key is not None:
        raw = key.public_key().public_bytes_raw()
        kid = key_id(raw)
    for raw_line in lines:
        record = json.loads(raw_line)
        record["prev"] = prev
        if record.get("event") == "command":
            record["new"] = 999  # the edit the forger wanted
        if key is not None:
            record["key"] = kid
            if record["event"] == "trail_start":
                record["public_key"] = base64.b64encode(raw).decode()
            record["sig"] = base64.b64encode(key.sign(signed_bytes(record))).decode()
        else:
            record.pop("sig", None)
        line = encode(record)
        out.append(line)
        prev = line_hash(line)
    return out


def _forge_head(path: Path, key: Ed25519PrivateKey, lines: list[bytes]) -> None:
    last = json.loads(lines[-1])
    head = {"v": 2, "trail": path.name, "seq": last["seq"], "hash": line_hash(lines[-1])}
    head |= {"ts": last["ts"], "key": key_id(key.public_key().public_bytes_raw())}
    head["sig"] = base64.b64encode(key.sign(signed_bytes(head))).decode()
    (path.parent / (path.name + ".head")).write_bytes(encode(head) + b"\n")


def test_an_intact_trail_verifies_and_the_key_is_created_0600(tmp_path: Path) -> None:
    path = _trail(tmp_path)
    key = Path(os.environ["VPLC_STATE_DIR"]) / "keys" / "audit-ed25519.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.with_suffix(".pub").is_file()
    result = verify_audit_log(path)
    assert result.ok and result.records == 21 and result.head_seq == 21, result
    assert main(["audit", "verify", str(path), "--key", str(key.with_suffix(".pub"))]) == 0
    first = json.loads(_lines(path)[0])
    assert first["event"] == "trail_start" and first["key"] == result.key


Tamper = Callable[[Path, list[bytes]], None]


def _edit_middle(path: Path, lines: list[bytes]) -> None:
    record = json.loads(lines[7])
    record["new"] = 4242  # someone "corrects" record 8, keeping the form canonical
    lines[7] = encode(record)
    _write(path, lines)


def _delete_middle(path: Path, lines: list[bytes]) -> None:
    _write(path, lines[:7] + lines[8:])


def _truncate(path: Path, lines: list[bytes]) -> None:
    _write(path, lines[:-10])


def _edit_last(path: Path, lines: list[bytes]) -> None:
    record = json.loads(lines[-1])
    record["user"] = "nobody"
    lines[-1] = encode(record)
    _write(path, lines)


def _recompute_unsigned(path: Path, lines: list[bytes]) -> None:
    _write(path, _resign(lines, None))


def _recompute_own_key(path: Path, lines: list[bytes]) -> None:
    forger = Ed25519PrivateKey.generate()
    forged = _resign(lines, forger)
    _write(path, forged)
    _forge_head(path, forger, forged)


def _insert_copy(path: Path, lines: list[bytes]) -> None:
    _write(path, [*lines[:5], lines[4], *lines[5:]])


def _drop_head(path: Path, lines: list[bytes]) -> None:
    (path.parent / (path.name + ".head")).unlink()


def _empty(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("tamper", "bad_record", "words"),
    [
        (_edit_middle, 8, "signature does not verify"),
        (_delete_middle, 8, "sequence number"),
        (_truncate, 12, "truncated"),
        (_edit_last, 21, "signature does not verify"),
        (_recompute_unsigned, 1, "signature does not verify"),
        (_recompute_own_key, 1, "not the trusted key"),
        (_insert_copy, 6, "sequence number"),
        (_drop_head, 0, "head file"),
        (_empty, 1, "truncated"),
    ],
)
def test_every_tamper_kind_is_caught_and_named(
    tmp_path: Path,
    tamper: Tamper,
    bad_record: int,
    words: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _trail(tmp_path)
    tamper(path, _lines(path))
    assert main(["audit", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and words in out, out
    result = verify_audit_log(path)
    assert not result.ok and result.line == bad_record, result
    if bad_record:
        assert f"record {bad_record}:" in out


def test_the_writer_refuses_to_continue_a_tampered_or_keyless_trail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _trail(tmp_path, 5)
    lines = _lines(path)
    _write(path, lines[:-2])
    with pytest.raises(AuditError, match="ends at record 4, but its signed head"):
        AuditLog(path, fsync=False)
    _write(path, lines)
    AuditLog(path, fsync=False).append("command", ok=True)  # restored: continues
    key = Path(os.environ["VPLC_STATE_DIR"]) / "keys" / "audit-ed25519.pem"
    shutil.move(key, tmp_path / "elsewhere.pem")
    with pytest.raises(AuditKeyError, match="missing: restore it from backup"):
        AuditLog(path, fsync=False)
    assert not key.exists()  # no new key was made for a signed trail
    other = tmp_path / "other.pem"
    monkeypatch.setenv("VPLC_AUDIT_KEY", str(other))
    AuditLog(tmp_path / "second.jsonl", fsync=False).append("x")  # a new trail: new key
    with pytest.raises(AuditKeyError, match="is key"):
        AuditLog(path, fsync=False)
    monkeypatch.delenv("VPLC_AUDIT_KEY")
    shutil.move(tmp_path / "elsewhere.pem", key)
    key.chmod(0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        AuditLog(path, fsync=False)


def test_a_running_writer_refuses_an_append_after_truncation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)
    for i in range(4):
        log.append("command", n=i)
    _write(path, _lines(path)[:-1])
    assert log.ready() is not None and "signed head" in str(log.ready())
    with pytest.raises(AuditError):
        log.append("command", n=99)
    assert len(_lines(path)) == 4  # nothing appended over the gap


def _legacy_runtime(path: Path, n: int) -> None:
    prev, lines = GENESIS, []
    for i in range(n):
        line = encode({"seq": i + 1, "ts": "2024-01-01T00:00:00+00:00", "event": "command",
                       "user": "ann", "n": i, "prev": prev})  # fmt: skip
        lines.append(line)
        prev = line_hash(line)
    _write(path, lines)


def _legacy_container(path: Path, n: int) -> None:
    prev, lines = "", []
    for i in range(n):
        entry = {"when": "2024-01-01T00:00:00Z", "who": "ops", "what": "deploy", "n": i}
        entry["prev_sha256"] = prev
        line = json.dumps(entry, sort_keys=True).encode()
        lines.append(line)
        prev = line_hash(line)
    _write(path, lines)


@pytest.mark.parametrize("writer", [_legacy_runtime, _legacy_container])
def test_legacy_files_are_named_as_such_and_continued_under_the_key(
    tmp_path: Path, writer: Callable[[Path, int], None], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.jsonl"
    writer(path, 4)
    assert main(["audit", "verify", str(path)]) == 1
    assert "legacy, unkeyed: 4 record(s)" in capsys.readouterr().out
    assert main(["audit", "verify", str(path), "--allow-legacy"]) == 0
    AuditLog(path, fsync=False).append("command", user="olga")
    result = verify_audit_log(path)
    assert result.ok and result.records == 6 and result.legacy == 4, result
    start = json.loads(_lines(path)[4])
    assert start["continues_unkeyed"]["records"] == 4
    lines = _lines(path)
    edited = lines[1].replace(b'"n":1', b'"n":7').replace(b'"n": 1', b'"n": 7')
    assert edited != lines[1]
    lines[1] = edited  # the old part is covered from now on
    _write(path, lines)
    assert not verify_audit_log(path).ok


def _append_many(path: str, who: str, n: int, state: str) -> None:
    os.environ["VPLC_STATE_DIR"] = state
    log = AuditLog(path, fsync=True)
    for i in range(n):
        log.append("command", user=who, n=i)


def test_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    AuditLog(path, fsync=False).append("start")  # the key exists before the race
    ctx = multiprocessing.get_context("spawn")
    state = os.environ["VPLC_STATE_DIR"]
    procs = [
        ctx.Process(target=_append_many, args=(str(path), who, 60, state)) for who in ("a", "b")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    result = verify_audit_log(path)
    assert result.ok and result.records == 122 and result.head_seq == 122, result
    users = [json.loads(x).get("user") for x in _lines(path)]
    assert users.count("a") == 60 and users.count("b") == 60


def test_show_filters_by_who_what_when(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _trail(tmp_path, 6)
    AuditLog(path, fsync=False).append("command", user="vera", cmd="force", target="X")
    assert main(["audit", "show", str(path), "--who", "vera"]) == 0
    out = capsys.readouterr().out
    assert "verify: OK" in out and "force X" in out and "1 record(s)" in out
    assert main(["audit", "show", str(path), "--what", "set_parameter", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verification"]["ok"] and len(doc["records"]) == 6
    assert {r["user"] for r in doc["records"]} == {"olga", "erik"}
    assert main(["audit", "show", str(path), "--since", "2999-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == []


def test_the_installed_command_exits_0_and_1(tmp_path: Path) -> None:
    path = _trail(tmp_path, 3)
    ok = subprocess.run([VPLC, "audit", "verify", str(path)], capture_output=True, text=True)
    assert ok.returncode == 0 and "OK: 4 record(s)" in ok.stdout, ok.stderr
    _write(path, _lines(path)[:-1])
    bad = subprocess.run([VPLC, "audit", "verify", str(path)], capture_output=True, text=True)
    assert bad.returncode == 1 and "record 4: truncated" in bad.stdout
    missing = subprocess.run(
        [VPLC, "audit", "verify", str(path), "--key", str(tmp_path / "nope.pem")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "nope.pem" in missing.stderr


def test_a_head_left_behind_by_a_crash_is_accepted_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = tmp_path / "audit.jsonl.head"
    log = AuditLog(path, fsync=False)
    log.append("command", n=1)
    old_head = head.read_bytes()
    for i in range(2, 5):
        log.append("command", n=i)
    head.write_bytes(old_head)  # the renames of the last three head updates were lost
    result = verify_audit_log(path)
    assert result.ok and result.head_seq == 2 and "3 record(s) behind" in result.notes[0]
    AuditLog(path, fsync=False).append("command", n=5)  # continues, and repairs the head
    assert verify_audit_log(path).head_seq == 6
    # But a line nobody signed after a lagging head is tampering, not a crash.
    lines = _lines(path)
    head.write_bytes(old_head)
    forged = json.loads(lines[-1])
    forged["n"] = 99
    _write(path, [*lines[:-1], encode(forged)])
    assert not verify_audit_log(path).ok
    with pytest.raises(AuditError, match="signature does not verify"):
        AuditLog(path, fsync=False)

"""Access control and the hash-chained audit log, without a broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from runtime._access import AccessConfig, AccessDeniedError, hash_token, load_access_config
from runtime._audit import AuditLog, verify_audit_log


def test_access_file_roles_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "roles": ["viewer", "operator", "engineer"],
                "users": {
                    "ann": {"role": "operator", "token_sha256": hash_token("a-token")},
                    "ed": {"role": "engineer", "token_sha256": hash_token("e-token")},
                },
            }
        )
    )
    access = load_access_config(path)
    assert access.authorize(cmd="set_parameter", user="ann", token="a-token", role=None) == (
        "operator"
    )
    assert access.authorize(cmd="force", user="ed", token="e-token", role=None) == "engineer"
    # An engineer may act with less authority than granted (e.g. as operator).
    assert access.authorize(cmd="phase", user="ed", token="e-token", role="operator") == "operator"
    with pytest.raises(AccessDeniedError, match="needs role 'engineer'"):
        access.authorize(cmd="force", user="ed", token="e-token", role="operator")
    with pytest.raises(AccessDeniedError, match="needs role 'engineer'"):
        access.authorize(cmd="stop", user="ann", token="a-token", role=None)
    with pytest.raises(AccessDeniedError, match="unknown or the token"):
        access.authorize(cmd="stop", user="ed", token=None, role=None)
    with pytest.raises(AccessDeniedError, match="unknown or the token"):
        access.authorize(cmd="stop", user="nobody", token="e-token", role=None)


def test_access_config_rejects_unknown_roles_and_keys() -> None:
    with pytest.raises(ValueError, match="unknown role 'admin'"):
        AccessConfig.model_validate(
            {"users": {"x": {"role": "admin", "token_sha256": hash_token("t")}}}
        )
    with pytest.raises(ValueError, match="Extra inputs"):
        AccessConfig.model_validate({"userz": {}})
    with pytest.raises(ValueError, match="pattern"):
        AccessConfig.model_validate({"users": {"x": {"role": "viewer", "token_sha256": "abc"}}})


def test_audit_chain_resumes_and_detects_edits_insertions_deletions(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)
    for i in range(3):
        log.append("command", user="ann", cmd="set_parameter", old=i, new=i + 1, why="tune")
    reopened = AuditLog(path, fsync=False)  # a restart continues the same chain
    reopened.append("command", user="ed", cmd="stop", old="RUN", new="STOP", why="end")
    assert reopened.head != log.head  # the first writer's view is now one record behind
    ok = verify_audit_log(path)
    assert ok.ok and ok.records == 4

    lines = path.read_text().splitlines()
    original = list(lines)

    def check(mutated: list[str]) -> tuple[bool, int, str]:
        path.write_text("\n".join(mutated) + "\n")
        res = verify_audit_log(path)
        return res.ok, res.line, res.error

    edited = json.loads(lines[1])
    edited["new"] = 99
    lines[1] = json.dumps(edited, sort_keys=True, separators=(",", ":"))
    assert check(lines)[:2] == (False, 3)
    assert check(original[:1] + original[2:])[:2] == (False, 2)  # a deleted record
    assert check([original[0], original[0], *original[1:]])[:2] == (False, 2)  # a copied one
    assert check([original[0].replace("{", "{ ", 1), *original[1:]])[0] is False
    assert check(original)[0] is True


def test_two_writers_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    bridge, cli = AuditLog(path, fsync=False), AuditLog(path, fsync=False)
    for i in range(3):
        bridge.append("command", n=i)
        cli.append("command", n=i)
    res = verify_audit_log(path)
    assert res.ok and res.records == 6
    assert cli.head == AuditLog(path).head

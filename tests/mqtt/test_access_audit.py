"""Access control and the hash-chained audit log, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runtime.ops._access import AccessConfig, AccessDeniedError, hash_token, load_access_config


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


def test_command_policy_in_the_access_file(tmp_path: Path) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "users": {"ann": {"role": "operator", "token_sha256": hash_token("t")}},
                "commands": {"max_age_s": 5, "user_rate": 2, "seen_file": "ids.seen"},
            }
        )
    )
    policy = load_access_config(path).commands
    assert policy.max_age_s == 5 and policy.user_rate == 2 and policy.global_rate == 50
    assert policy.id_window_s == 5 + policy.max_future_s
    assert policy.seen_file == tmp_path / "ids.seen"  # relative to the access file
    with pytest.raises(ValueError, match="max_age_s"):
        AccessConfig.model_validate({"commands": {"max_age_s": 0}})
    with pytest.raises(ValueError, match="Extra inputs"):
        AccessConfig.model_validate({"commands": {"max_agee_s": 10}})

"""Release history by image ID: `vplc history`, `vplc rollback --to VERSION|IMAGE_ID`, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from containers._errors import InvalidInputError
from containers._history import find_release, merge_history, release_repo, short_id
from containers._ops import container_name
from containers._rollout import rollback, update

ROOT = Path(__file__).resolve().parents[2]
Deployments = Callable[..., Path]


def _entry(image_id: str, version: str, image: str = "") -> dict[str, Any]:
    return {"image_id": image_id, "version": version, "image": image or f"app:{version}"}


def test_history_keeps_one_entry_per_image_newest_first() -> None:
    a, b, c = (_entry(f"sha256:{x * 64}", v) for x, v in (("a", "1"), ("b", "2"), ("c", "3")))
    hist, dropped = merge_history([], a, keep=2)
    hist, dropped = merge_history(hist, b, keep=2)
    assert [e["version"] for e in hist] == ["2", "1"] and dropped == []
    hist, dropped = merge_history(hist, c, keep=2)
    assert [e["version"] for e in hist] == ["3", "2"] and dropped == [a]
    # Made current again by ID: moves to the front and keeps the tag it was deployed under.
    hist, dropped = merge_history(hist, _entry(b["image_id"], "2", b["image_id"]), keep=2)
    assert [(e["version"], e["image"]) for e in hist] == [("2", "app:2"), ("3", "app:3")]
    assert dropped == []


def test_find_release_by_version_or_id_prefix() -> None:
    hist = [_entry("sha256:abcd" + "1" * 60, "1.1.0"), _entry("sha256:abcd" + "2" * 60, "1.0.0"),
            _entry("sha256:ef01" + "3" * 60, "0.9.0")]  # fmt: skip
    assert find_release("d", hist, None)["version"] == "1.0.0"
    assert find_release("d", hist, "0.9.0")["version"] == "0.9.0"
    assert find_release("d", hist, "abcd2")["version"] == "1.0.0"
    assert find_release("d", hist, "sha256:EF01")["version"] == "0.9.0"
    with pytest.raises(InvalidInputError, match="ambiguous image ID prefix"):
        find_release("d", hist, "abcd")
    with pytest.raises(InvalidInputError, match=r"kept releases: 1\.1\.0 \(abcd11111111\)"):
        find_release("d", hist, "2.0.0")
    with pytest.raises(InvalidInputError, match="no release"):
        find_release("d", hist, "ef0")  # shorter than 4 hex digits: not taken as an ID
    with pytest.raises(InvalidInputError, match=r"runs 1\.1\.0 already"):
        find_release("d", hist, "1.1.0")
    with pytest.raises(InvalidInputError, match="no previous version"):
        find_release("d", hist[:1], None)


def _vplc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.host.cli", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip


def test_rollback_to_a_release_by_version_and_image_id(
    images: dict[str, str], deployments: Deployments, manager: Any, client: Any, state_dir: Path
) -> None:
    path = deployments(images["v1"])
    name = path.stem
    v1, v2 = (client.images.get(images[k]).id for k in ("v1", "v2"))
    manager.deploy(path)
    update(manager, name, images["v2"])
    rec = manager.store.get(name)
    assert [(e["version"], e["image_id"]) for e in rec["history"]] == [("1.0.1", v2), ("1.0.0", v1)]
    first = rec["history"][1]
    assert first["app_sha256"] == client.images.get(v1).labels["org.vplc.app-sha256"]
    assert first["what"] == "deploy" and first["who"] == "pytest" and first["deployed_at"]
    # Each kept release is tagged, so a rebuilt tag cannot take the rollback target away.
    for image_id in (v1, v2):
        assert f"{release_repo(name)}:{short_id(image_id)}" in client.images.get(image_id).tags

    common = ("--state-dir", str(state_dir), "--user", "carol")
    refused = _vplc("rollback", name, "--to", "7.7.7", *common)
    assert refused.returncode == 2
    assert "no release of deployment" in refused.stderr and "1.0.0 (" in refused.stderr
    last = manager.audit.records()[-1]
    assert (last["what"], last["outcome"], last["who"], last["to"]) == (
        "rollback", "refused", "carol", "7.7.7",
    )  # fmt: skip

    back = _vplc("rollback", name, "--to", short_id(v1)[:8], *common)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["to_image_id"] == v1
    assert client.containers.get(container_name(name)).attrs["Image"] == v1
    again = rollback(manager, name, to="1.0.1")
    assert (again["from"], again["to"], again["to_image_id"]) == ("1.0.0", "1.0.1", v2)

    shown = _vplc("history", name, "--state-dir", str(state_dir))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"{name}: 2 release(s) kept (up to 5)")
    assert lines[2].startswith("* 1.0.1") and short_id(v2) in lines[2] and "rollback by" in lines[2]
    assert lines[3].startswith("  1.0.0") and short_id(v1) in lines[3]
    as_json = json.loads(_vplc("history", name, "--json", "--state-dir", str(state_dir)).stdout)
    assert [e["image_id"] for e in as_json] == [v2, v1]

    with pytest.raises(InvalidInputError, match="runs image"):
        update(manager, name, images["v2"])
    manager.remove(name)
    assert not [t for t in client.images.get(v1).tags if t.startswith(release_repo(name))]
    records = manager.audit.records()
    assert all("from_image_id" in r and "to_image_id" in r for r in records)
    assert [r["outcome"] for r in records].count("refused") == 2

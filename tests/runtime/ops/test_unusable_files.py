"""Files of the records layer that are not what they should be: refused at once, named.

Found by the fuzzer (tests/fuzz/test_fuzz_ops.py): a FIFO blocked ``vplc users``/``audit``
forever, /dev/zero filled memory, deeply nested JSON was a RecursionError traceback, a
broken access file a yaml traceback, and a trail named "" a ValueError.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runtime.core._files import UnusableFileError, open_regular, read_regular
from runtime.ops._access import load_access_config
from runtime.ops._audit import AuditError, AuditLog
from runtime.ops._audit_key import AuditKeyError, load_verify_key
from runtime.ops._audit_verify import verify_audit_log
from runtime.ops._batch_store import UnknownBatchError, list_records, load_record
from runtime.ops._users import UserStore, UserStoreError

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def odd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VPLC_STATE_DIR", str(tmp_path / "state"))
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "deep.json").write_text(DEEP)
    return tmp_path


def test_open_regular_refuses_fifos_devices_folders_and_big_files(odd: Path) -> None:
    for name, why in (
        ("fifo", "not a regular file"),
        ("zero", "not a regular file"),
        (".", "folder"),
    ):
        with pytest.raises(UnusableFileError) as err:
            open_regular(odd / name)
        assert why in str(err.value.strerror)
    with pytest.raises(UnusableFileError, match="more than the 10 accepted"):
        read_regular(odd / "deep.json", 10)
    assert read_regular(odd / "deep.json", 10**6).startswith(b"[[")


@pytest.mark.parametrize(
    ("name", "why"),
    [("fifo", "not a regular file"), ("zero", "not a regular"), ("deep.json", "not valid JSON")],
)
def test_user_store(odd: Path, name: str, why: str) -> None:
    with pytest.raises(UserStoreError, match=why):
        UserStore.load(odd / name)


def test_access_file_with_broken_yaml_names_the_file(odd: Path) -> None:
    (odd / "access.yaml").write_text("user_store: [1, 2\n")
    with pytest.raises(ValueError, match=r"access.yaml: line 2.*YAML syntax error"):
        load_access_config(odd / "access.yaml")
    with pytest.raises(ValueError, match="not a regular file"):
        load_access_config(odd / "fifo")


@pytest.mark.parametrize("name", ["fifo", "zero"])
def test_verify_key(odd: Path, name: str) -> None:
    with pytest.raises(AuditKeyError, match="not a regular file"):
        load_verify_key(odd / name)


def test_verify_a_trail_that_is_a_fifo_a_device_deep_json_or_no_name(odd: Path) -> None:
    for name in ("fifo", "zero"):
        result = verify_audit_log(odd / name)
        assert not result.ok and "not a regular file" in result.summary()
    (odd / "t.jsonl").write_text(DEEP + "\n")
    result = verify_audit_log(odd / "t.jsonl")
    assert not result.ok and "not JSON" in result.summary()
    assert not verify_audit_log(Path("")).ok  # was ValueError: PosixPath('.') has an empty name


def test_an_audit_trail_must_be_a_regular_file(odd: Path) -> None:
    with pytest.raises(AuditError, match="not a regular file"):
        AuditLog(odd / "fifo")  # records written into a pipe would be lost


def test_batch_records_that_are_fifos_or_deep_json(odd: Path) -> None:
    batches = odd / "batches"
    batches.mkdir()
    (batches / "BR-20250101-001.json").write_text(DEEP)
    os.mkfifo(batches / "BR-20250101-002.json")
    rows = {r["batch_id"]: r["status"] for r in list_records(batches)}
    assert rows["BR-20250101-001"].startswith("unreadable: maximum recursion")
    assert rows["BR-20250101-002"] == "unreadable: not a regular file (a FIFO or a device)"
    with pytest.raises(UnknownBatchError, match="not readable as JSON"):
        load_record(batches, "BR-20250101-001")


def test_a_record_whose_header_fields_are_not_objects_is_listed_as_unreadable(
    odd: Path,
) -> None:
    batches = odd / "batches"
    batches.mkdir()
    record = {"header": {"batch_id": "BR-20250101-001", "end": 5}, "summary": {}}
    (batches / "BR-20250101-001.json").write_text(json.dumps(record))
    (row,) = list_records(batches)  # was AttributeError: 'int' object has no attribute 'get'
    assert row["status"].startswith("unreadable: ")


@pytest.mark.parametrize(
    ("last", "why"),
    [('{"v": 2, "event": "x"}', "not an audit record"), (DEEP, "not an audit record")],
)
def test_an_edited_last_trail_line_stops_appending_with_a_reason(
    odd: Path, last: str, why: str
) -> None:
    from runtime.ops._audit_format import FORMAT

    trail = odd / "t.jsonl"
    AuditLog(trail).append("x")
    trail.write_text(trail.read_text() + last.replace('"v": 2', f'"v": {FORMAT}') + "\n")
    with pytest.raises(AuditError, match=why):  # was KeyError 'seq' / RecursionError
        AuditLog(trail)


def test_pdf_cells_longer_than_a_page_are_cut_not_refused(tmp_path: Path) -> None:
    from runtime.host._pdf import audit_pdf

    long = {k: "W" * 5000 for k in ("seq", "when", "event", "who", "what", "outcome", "detail")}
    audit_pdf("t", False, "verdict", [long | {"record": {}}], tmp_path / "t.pdf")  # was ValueError
    assert (tmp_path / "t.pdf").stat().st_size > 0


def test_a_record_whose_batch_id_is_not_a_string_is_listed_as_unreadable(odd: Path) -> None:
    batches = odd / "batches"
    batches.mkdir()
    record = {"header": {"batch_id": [[1]]}, "summary": {}}
    (batches / "BR-20250101-001.json").write_text(json.dumps(record))
    (row,) = list_records(batches)  # `vplc batch list` then failed formatting it (TypeError)
    assert row == {
        "batch_id": "BR-20250101-001",
        "status": "unreadable: expected header.batch_id to be a string",
        "file": str(batches / "BR-20250101-001.json"),
    }

"""`vplc run --batch-dir` and a bench scenario leave a batch record; the trace does not change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.bench import run_scenario
from runtime.host.cli import main

BIOREACTOR = Path(__file__).parents[3] / "plc_apps" / "bioreactor"


pytestmark = pytest.mark.usefixtures("logging_restored")


def test_virtual_run_records_the_batch_and_leaves_the_trace_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ["run", str(BIOREACTOR), "--virtual", "--duration", "600", "--no-view"]
    assert main([*run, "--trace", str(tmp_path / "plain.csv")]) == 0
    batches = tmp_path / "batches"
    assert main([*run, "--trace", str(tmp_path / "rec.csv"), "--batch-dir", str(batches)]) == 0
    assert (tmp_path / "plain.csv").read_bytes() == (tmp_path / "rec.csv").read_bytes()
    (path,) = batches.glob("BR-*.json")
    assert f"batch record: {path}" in capsys.readouterr().out
    record = json.loads(path.read_text())
    assert record["summary"]["status"] == "OPEN" and "RUNNING" in record["summary"]["note"]
    assert record["summary"]["steps"] == ["FILL", "HEAT"]
    assert record["header"]["image"] == "not in a container"
    assert record["header"]["end"]["t_s"] == pytest.approx(599.8)
    assert record["audit_link"]["audit_trail"] is None  # a virtual run without a trail
    assert main(["batch", "list", "--dir", str(batches), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["batch_id"] == path.stem and row["status"] == "OPEN"
    # Without a trail the export cannot claim integrity, and says why (exit 1).
    out = tmp_path / "r.json"
    assert main(["batch", "record", path.stem, "--dir", str(batches), "--json", str(out)]) == 1
    assert "no audit trail anchors this record" in capsys.readouterr().out


def test_unusable_batch_dir_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = ["run", str(BIOREACTOR), "--virtual", "--duration", "1", "--batch-dir", str(blocker)]
    assert main(args) == 2
    assert "--batch-dir" in capsys.readouterr().err


def test_bench_scenario_report_carries_the_batch_record(tmp_path: Path) -> None:
    result = run_scenario(BIOREACTOR / "scenarios" / "hold_restart.yaml", out=tmp_path)
    assert result.passed and not result.output_errors
    (path,) = (tmp_path / "batches").glob("BR-*.json")
    record = json.loads(path.read_text())
    actions = [(a["user"], a["cmd"], a["command"]) for a in record["operator_actions"]]
    assert actions == [("bench", "phase", "HOLD"), ("bench", "phase", "RESTART")]
    held = [e for e in record["timeline"] if e["kind"] == "phase" and e["to"] == "HELD"]
    assert len(held) == 1 and 1320 <= held[0]["t_s"] <= 1322


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bioreactor batch record (a virtual run of 10 minutes)."""
    batches = tmp_path_factory.mktemp("rec") / "batches"
    run = ["run", str(BIOREACTOR), "--virtual", "--duration", "600", "--no-view"]
    assert main([*run, "--batch-dir", str(batches)]) == 0
    return next(batches.glob("BR-*.json"))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: [r], "not a batch record: expected a JSON object, got list"),
        (lambda r: r | {"header": "x"}, "expected 'header' to be an object, got str"),
        (lambda r: r | {"summary": None}, "expected 'summary' to be an object"),
    ],
)
def test_a_record_out_of_shape_is_refused_naming_the_file(
    tmp_path: Path, recorded: Path, edit: Any, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / recorded.name).write_text(json.dumps(edit(json.loads(recorded.read_text()))))
    argv = ["batch", "record", recorded.stem, "--dir", str(tmp_path)]
    assert main([*argv, "--json", str(tmp_path / "o.json")]) == 2  # was AttributeError/KeyError
    err = capsys.readouterr().err
    assert f"batch record {tmp_path / recorded.name}: " in err and expected in err


def test_a_resealed_record_the_pdf_cannot_lay_out_is_refused_not_a_traceback(
    tmp_path: Path, recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.ops._batch_store import record_hash

    record = json.loads(recorded.read_text())
    record["timeline"] = ["-inf"]  # its hash made to match: only the layout can object
    record["audit_link"] = 3.5
    record["integrity"] = {"sha256": record_hash(record)}
    (tmp_path / recorded.name).write_text(json.dumps(record))
    out = tmp_path / "o.pdf"
    argv = ["batch", "record", recorded.stem, "--dir", str(tmp_path), "--pdf", str(out)]
    assert main(argv) == 2  # was AttributeError in check_record, then in _pdf._when
    err = capsys.readouterr().err
    assert f"--pdf: the record {recorded.stem} in {tmp_path} is not in the shape" in err
    assert "audit_link or integrity is not an object" in err and not out.exists()


def test_a_record_naming_a_trail_that_is_no_path_says_so(
    tmp_path: Path, recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = json.loads(recorded.read_text())
    record["audit_link"]["audit_trail"] = 3  # was TypeError from Path(3)
    (tmp_path / recorded.name).write_text(json.dumps(record))
    argv = ["batch", "record", recorded.stem, "--dir", str(tmp_path), "--json", str(tmp_path / "o")]
    assert main(argv) == 1
    assert (
        "audit_link.audit_trail is not a path (3): the record was edited" in capsys.readouterr().out
    )

"""`vplc run --batch-dir` and a bench scenario leave a batch record; the trace does not change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from runtime.bench import run_scenario
from runtime.host.cli import main

BIOREACTOR = Path(__file__).parents[3] / "plc_apps" / "bioreactor"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """main() points structlog at this test's captured stdout; later tests must not log there."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


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

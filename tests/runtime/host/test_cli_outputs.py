"""`vplc run` output paths: refused before RUN when unusable, write errors reported at the end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.host._heartbeat import Heartbeat
from runtime.host._outpaths import OutputPathError, check_output_dir, check_output_file
from tests.conftest import MakeApp

VPLC = str(Path(sys.executable).with_name("vplc"))


def _run(app: Path, *extra: str, duration: str = "1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VPLC, "run", str(app), "--virtual", "--duration", duration, *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _refused(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "state STOP" not in res.stdout  # nothing ran
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vplc: error: "), res.stderr
    return lines[0]


@pytest.mark.parametrize("flag", ["--trace", "--stats-json", "--heartbeat"])
def test_an_output_in_a_missing_folder_is_refused_before_run(
    make_app: MakeApp, tmp_path: Path, flag: str
) -> None:
    target = tmp_path / "nonexistent" / "out.file"
    t0 = time.perf_counter()
    line = _refused(_run(make_app(), flag, str(target), duration="100000"))
    assert f"{flag} {target}" in line and "does not exist" in line
    assert time.perf_counter() - t0 < 30  # refused up front, not after 100000 s of app time
    assert not target.parent.exists()


@pytest.mark.parametrize("flag", ["--trace", "--stats-json", "--heartbeat"])
def test_an_output_that_is_a_folder_is_refused(
    make_app: MakeApp, tmp_path: Path, flag: str
) -> None:
    line = _refused(_run(make_app(), flag, str(tmp_path)))
    assert f"{flag} {tmp_path}" in line and "is a folder" in line


def test_the_heartbeat_must_be_replaceable(make_app: MakeApp) -> None:
    line = _refused(_run(make_app(), "--heartbeat", "/dev/null"))
    assert "--heartbeat /dev/null" in line and "not a regular file" in line


def test_a_trace_to_dev_null_is_fine(make_app: MakeApp) -> None:
    res = _run(make_app(), "--trace", "/dev/null")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("flag", ["--trace", "--stats-json"])
def test_a_write_error_at_the_end_is_one_line_after_the_summary(
    make_app: MakeApp, flag: str
) -> None:
    res = _run(make_app(), flag, "/dev/full", duration="5")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "state STOP" in res.stdout and "safe values" in res.stdout  # the summary is there
    errors = [x for x in res.stderr.splitlines() if x.startswith("vplc: error:")]
    assert len(errors) == 1, res.stderr
    assert errors[0].startswith(f"vplc: error: {flag} /dev/full: write failed: No space left")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1e300", "at most 1e+09 seconds"), ("inf", "positive"), ("nan", "positive"), ("-1", "")],
)
def test_durations_are_bounded(make_app: MakeApp, value: str, expected: str) -> None:
    res = _run(make_app(), duration=value)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "argument --duration" in res.stderr and expected in res.stderr


def test_check_output_file_leaves_no_file_behind(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    check_output_file("--stats-json", target)
    assert not target.exists()
    target.write_text("old")
    check_output_file("--stats-json", target)
    assert target.read_text() == "old"  # probed by appending nothing, never truncated
    check_output_file("--heartbeat", target, replaced=True)
    assert not target.with_name("s.json.tmp").exists()


def test_check_output_dir_creates_it_or_says_why(tmp_path: Path) -> None:
    check_output_dir("--out", tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir() and not list((tmp_path / "a" / "b").iterdir())
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputPathError, match=r"--out .*f/x: cannot create the folder .*f"):
        check_output_dir("--out", tmp_path / "f" / "x")
    with pytest.raises(OutputPathError, match="exists and is not a folder"):
        check_output_dir("--out", tmp_path / "f")


def test_heartbeat_write_failures_are_counted_and_logged_once(
    make_app: MakeApp, tmp_path: Path
) -> None:
    import structlog

    from runtime import ScanEngine, VirtualClock, load_app

    engine = ScanEngine(load_app(make_app()), clock=VirtualClock())
    path = tmp_path / "hb.json"
    beat = Heartbeat(engine, path, interval_s=3600)
    blocker = path.with_name("hb.json.tmp")
    blocker.mkdir()  # the temp file cannot be created: like a full or read-only volume
    with structlog.testing.capture_logs() as logs:
        assert not beat.write() and not beat.write()
        blocker.rmdir()
        assert beat.write()
        assert beat.close()
    assert [e["event"] for e in logs] == ["heartbeat_write_failed", "heartbeat_write_recovered"]
    assert beat.failures == 2 and beat.error == "" and json.loads(path.read_text())["stopped"]


def test_a_nul_byte_in_an_argument_is_invalid_input(capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.host.cli import main

    assert main(["bench", "run", "s\x00.yaml"]) == 2
    assert "NUL byte" in capsys.readouterr().err

"""`vplc users|audit|batch|run` with bad input: one paragraph naming it, exit 2, no traceback.

Each case was a defect the fuzzers found (tests/fuzz/test_fuzz_ops.py, test_fuzz_cli.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runtime.host.cli import main

BIOREACTOR = Path(__file__).parents[3] / "plc_apps" / "bioreactor"


pytestmark = pytest.mark.usefixtures("logging_restored")


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A signed trail of two records (trail_start, user_added) and a garbage line after."""
    monkeypatch.setenv("VPLC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("VPLC_NEW_PASSWORD", "Temp-Pass-123")
    path = tmp_path / "a.jsonl"
    argv = ["users", "add", "jdoe", "--name", "J D", "--role", "engineer"]
    assert main([*argv, "--store", str(tmp_path / "u.json"), "--audit", str(path)]) == 0
    return path


def test_a_nul_byte_names_the_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "list", "--store", "a\x00b"]) == 2
    err = capsys.readouterr().err
    assert "argument 4 ('a\\x00b'), the value of --store, contains a NUL byte" in err


def test_a_file_name_too_long_is_refused_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    name = "/tmp/" + "y" * 300
    assert main(["audit", "show", name]) == 2  # was OSError ENAMETOOLONG from Path.exists()
    assert f"vplc: error: {name}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["audit", "show", ""], ["users", "list", "--store", ""], ["batch", "list", "--dir", ""]],
)
def test_an_empty_path_is_refused_by_the_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)  # Path("") is ".": it was "user store .: is a folder" or ".: no such file"
    assert exit_.value.code == 2
    assert "expected a path, got ''" in capsys.readouterr().err


def test_an_unusable_audit_trail_for_users_names_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trail: Path
) -> None:
    os.mkfifo(tmp_path / "fifo")
    for bad in (tmp_path / "fifo", tmp_path):
        assert (
            main(["users", "list", "--store", str(tmp_path / "u.json"), "--audit", str(bad)]) == 2
        )
        assert f"--audit {bad}: cannot use as the audit trail" in capsys.readouterr().err


def test_audit_show_exports_an_unreadable_line_instead_of_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trail: Path
) -> None:
    with trail.open("a") as fh:
        fh.write("{not json\n")
    capsys.readouterr()
    assert main(["audit", "show", str(trail), "--json"]) == 0  # was KeyError: 'record'
    records = json.loads(capsys.readouterr().out)["records"]
    assert records[-1] == {"unreadable_line": 3}
    assert main(["audit", "show", str(trail), "--pdf", str(tmp_path / "r.pdf")]) == 1
    assert (tmp_path / "r.pdf").stat().st_size > 0  # was KeyError in audit_pdf


def test_exports_to_a_fifo_are_refused_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trail: Path
) -> None:
    os.mkfifo(tmp_path / "out")
    out = str(tmp_path / "out")
    assert main(["audit", "show", str(trail), "--pdf", out]) == 2  # was a hang on open
    assert f"--pdf {out}: cannot write" in capsys.readouterr().err
    assert main(["batch", "record", "BR-20250101-001", "--dir", str(tmp_path), "--json", out]) == 2
    assert f"--json {out}: cannot write" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags",
    [["--rt-auto"], ["--spin", "adaptive"], ["--spin-us", "50"], ["--rt-priority", "80"],
     ["--cpus", "1", "--rt-auto"]],
)  # fmt: skip
def test_real_time_knobs_in_a_virtual_run_are_refused_not_ignored(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(BIOREACTOR), "--virtual", "--duration", "1", *flags]
    assert main(argv) == 2  # was exit 0 with the knobs silently unused
    err = capsys.readouterr().err
    assert f"vplc: error: {flags[0]}" in err and "a virtual run has no scan thread" in err
    assert main(["run", str(BIOREACTOR), "--virtual", "--duration", "1", "--no-rt-auto"]) == 0


def test_batch_dir_for_an_app_without_batch_records_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    app = tmp_path / "app"
    shutil.copytree(BIOREACTOR, app)
    text = (app / "app.yaml").read_text()
    assert "\ngmp:" in text
    (app / "app.yaml").write_text(text.split("\ngmp:")[0] + "\n")  # gmp is the last section
    argv = ["run", str(app), "--virtual", "--duration", "1", "--batch-dir", str(tmp_path / "b")]
    assert main(argv) == 2  # was exit 0 with an empty folder and no word about it
    err = capsys.readouterr().err
    assert f"--batch-dir {tmp_path / 'b'}: " in err and "has no gmp.batch section" in err

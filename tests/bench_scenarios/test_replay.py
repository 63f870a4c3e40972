"""Replay: a recorded trace's inputs fed to the same app (identical) or a changed one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runtime.bench import ReplayError, replay, run_scenario

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "plc_apps" / "bioreactor"
VPLC = str(Path(sys.executable).with_name("vplc"))


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "trace.csv"
    res = subprocess.run(
        [VPLC, "run", str(APP), "--virtual", "--duration", "300", "--trace", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return out


def _changed_app(tmp_path: Path) -> Path:
    app = tmp_path / "bioreactor"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__", "scenarios"))
    manifest = yaml.safe_load((app / "app.yaml").read_text())
    for p in manifest["parameters"]:
        if p["name"] == "agitation_rpm":
            p["default"] = 160.0  # the agitator setpoint changes as soon as control is on
    (app / "app.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return app


def test_unchanged_app_replays_identically(trace: Path) -> None:
    result = replay(trace, APP)
    assert result.identical, result.summary()
    assert result.compared == result.rows == 1500


def test_changed_app_reports_first_differing_cycle(trace: Path, tmp_path: Path) -> None:
    result = replay(trace, _changed_app(tmp_path))
    assert not result.identical
    assert result.first_cycle is not None and result.first_t is not None
    assert "M601" in result.first_diffs
    recorded, replayed = result.first_diffs["M601"]
    assert (recorded, replayed) == (150.0, 160.0)
    assert result.first_t == pytest.approx((result.first_cycle - 1) * 0.2)
    assert "different: first at cycle" in result.summary()


def test_replay_cli_exit_codes(trace: Path, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VPLC, "bench", "replay", *args], capture_output=True, text=True, timeout=120
        )

    same = run(str(trace), str(APP))
    assert same.returncode == 0 and "identical" in same.stdout, same.stdout + same.stderr
    changed = run(str(trace), str(_changed_app(tmp_path)))
    assert changed.returncode == 1 and "M601" in changed.stdout
    tolerated = run(str(trace), str(_changed_app(tmp_path / "b")), "--tolerance", "20")
    assert tolerated.returncode == 0, tolerated.stdout
    broken = tmp_path / "broken.csv"
    lines = trace.read_text().splitlines()
    cut = [line.split(",") for line in lines[:50]]  # without the last point column, P401H
    broken.write_text("\n".join(",".join(f[:-3] + f[-2:]) for f in cut) + "\n")
    invalid = run(str(broken), str(APP))
    assert invalid.returncode == 2 and "missing ['P401H']" in invalid.stderr


def test_trace_that_does_not_fit_the_app(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("time,X\n0.0,1\n")
    with pytest.raises(ReplayError, match="first column must be 't'"):
        replay(bad, APP)


def test_a_bad_probe_replays_with_its_recorded_quality(tmp_path: Path) -> None:
    # The DO loop falls back to a fixed air flow while its probe is BAD: replayed as GOOD
    # readings, the same app would keep controlling and differ from the recording.
    result = run_scenario(APP / "scenarios" / "do_probe_dropout.yaml", out=tmp_path)
    assert result.passed, result.failures
    trace = tmp_path / "trace.csv"
    rows = trace.read_text().splitlines()
    assert rows[0].endswith(",inputs.quality,parameters.changed")
    assert any("AT301=BAD" in row for row in rows)
    # set before the start (row 1, against the defaults) and at 20 min by the timeline
    assert rows[1].endswith(",heat_settle_s=60.0")
    assert sum(row.endswith(",do_fallback_air_pct=55.0") for row in rows) == 1
    same = replay(trace, APP)
    assert same.identical, same.summary()


def test_a_trace_without_the_quality_column_replays_as_all_good(
    trace: Path, tmp_path: Path
) -> None:
    lines = trace.read_text().splitlines()
    assert lines[0].endswith(",inputs.quality,parameters.changed")
    old = tmp_path / "old.csv"
    old.write_text("".join(line.rsplit(",", 2)[0] + "\n" for line in lines))
    result = replay(old, APP)
    assert result.identical, result.summary()
    assert result.compared == 1500


def test_a_malformed_quality_entry_names_line_and_entry(trace: Path, tmp_path: Path) -> None:
    lines = trace.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",AT301=WORSE,"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayError, match=r"bad.csv:4: inputs.quality entry 'AT301=WORSE'"):
        replay(bad, APP)
    lines[3] = lines[3].rsplit(",", 2)[0] + ",,temp_sp=warm"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayError, match=r"bad.csv:4: parameters.changed entry 'temp_sp=warm'"):
        replay(bad, APP)
    lines[3] = lines[3].rsplit(",", 2)[0] + ",,tempsp=37"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReplayError, match=r"no parameter 'tempsp'"):
        replay(bad, APP)


def test_a_parameter_written_mid_run_is_replayed_at_its_cycle(trace: Path, tmp_path: Path) -> None:
    # As if an operator had lowered the fill target to 62 L at row 10 (t = 1.8 s): replayed,
    # the fill valve closes at 62 L, while the recording filled on to 70 L.
    lines = trace.read_text().splitlines()
    lines[10] = lines[10].rsplit(",", 1)[0] + ",fill_target_l=62.0"
    edited = tmp_path / "edited.csv"
    edited.write_text("\n".join(lines) + "\n")
    result = replay(edited, APP)
    assert not result.identical
    assert "XV401F" in result.signals
    assert result.first_cycle is not None and result.first_cycle > 10

"""Replay: a recorded trace's inputs fed to the same app (identical) or a changed one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runtime.bench import ReplayError, replay

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
    broken.write_text("\n".join(",".join(line.split(",")[:-1]) for line in lines[:50]) + "\n")
    invalid = run(str(broken), str(APP))
    assert invalid.returncode == 2 and "missing ['P401H']" in invalid.stderr


def test_trace_that_does_not_fit_the_app(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("time,X\n0.0,1\n")
    with pytest.raises(ReplayError, match="first column must be 't'"):
        replay(bad, APP)

"""`vplc bench campaign`: a small matrix locally and on a Dask LocalCluster; bad input; crashes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.bench._campaign import run_matrix
from runtime.bench._campaign_spec import build_matrix, parse_faults, scenario_files
from tests.conftest import COPY_LOGIC, memory_manifest, write_app

VPLC = str(Path(sys.executable).with_name("vplc"))
ROOT = Path(__file__).resolve().parents[2]
BIO = ROOT / "plc_apps" / "bioreactor"
FEED = BIO / "scenarios" / "feed_pump_failure.yaml"


def _campaign(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VPLC, "--log-format", "json", "bench", "campaign", *args, "--quiet"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _short(tmp: Path, minutes: int = 4, name: str = "short") -> Path:
    """A few minutes of bioreactor: heating must not trip the feed-fail alarm."""
    sc = {
        "app": str(BIO),
        "duration": f"{minutes} min",
        "assertions": [{"name": "no feed alarm", "never": "alarms.feed_fail.ACTIVE"}],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


def test_a_small_matrix_runs_in_parallel_and_writes_one_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    fault = "{kind: pump_failed, channel: feed_pump, at: [60, 120]}"
    res = _campaign(
        str(BIO), "--scenarios", str(_short(tmp_path)), str(FEED), "--seeds", "2",
        "--faults", fault, "--workers", "2", "--out", str(out),
    )  # fmt: skip
    summary = json.loads((out / "campaign.json").read_text())
    assert summary["runs"] == 2 * 2 * 2  # scenarios × fault timings × seeds
    # the pump fails at 1 or 2 min, long before the scenario's own 20 min: it must see
    # no feeding at 19 min, so every feed_pump_failure run fails, every short one passes
    cells = {(c["scenario"], c["at_s"]): c for c in summary["cells"]}
    assert cells[("short", 60.0)]["passed"] == 2
    assert cells[("feed_pump_failure", 120.0)]["failed_seeds"] == [0, 1]
    assert summary["pass_rate"] == 0.5 and res.returncode == 1, res.stderr
    assert {(w["scenario"], w["seed"]) for w in summary["worst"]} == {
        ("feed_pump_failure", 0),
        ("feed_pump_failure", 1),
    }
    assert (out / "campaign.md").read_text().count("| feed_pump_failure |") == 2
    assert "<table" in (out / "campaign.html").read_text()
    assert list(out.glob("dist_*.png"))  # the distribution plots
    assert "feed_pump_failure seed 0" in res.stdout
    assert "lifecycle" not in res.stdout + res.stderr  # the runs' info lines stay out


def _without_timing(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in o.items() if k not in ("wall_s", "cpu_s", "process_s")} for o in outcomes
    ]


def test_runs_start_longest_first_and_outcomes_do_not_depend_on_the_workers(
    tmp_path: Path,
) -> None:
    files = [_short(tmp_path, 2, "two"), _short(tmp_path, 6, "six"), _short(tmp_path, 4, "four")]
    fault = "{kind: pump_failed, channel: feed_pump, at: [60]}"
    runs = build_matrix(BIO, files, 2, parse_faults([fault]))
    assert {r.preload for r in runs} == {("sim_hardware.driver",)}  # for the forkserver
    started: list[str] = []  # one worker: the order of completion is the order of start
    one = run_matrix(
        runs, workers=1, timeout_s=60, progress=lambda o: started.append(o["scenario"])
    )
    assert started == ["six"] * 2 + ["four"] * 2 + ["two"] * 2
    two = run_matrix(runs, workers=2, timeout_s=60)
    assert [o["index"] for o in two] == list(range(6))  # matrix order, whatever the schedule
    assert _without_timing(one) == _without_timing(two)
    assert [o["sim_s"] for o in one] == [119.8] * 2 + [359.8] * 2 + [239.8] * 2
    assert all(o["status"] == "pass" and o["cpu_s"] > 0 for o in one + two)


CRASHY = COPY_LOGIC.replace(
    "    def execute(self, ctx):\n",
    textwrap.indent(
        textwrap.dedent("""
        def execute(self, ctx):
            if self.gain.value == 7 and ctx.now > 1:
                import os
                os._exit(3)
            while self.gain.value == 9 and ctx.now > 1:
                pass
        """),
        "    ",
    ),
)


def _crashy_app(tmp: Path) -> Path:
    app = write_app(tmp / "crashy", memory_manifest(), CRASHY)
    (app / "scenarios").mkdir()
    for name, gain in (("ok", 2), ("crash", 7), ("hang", 9)):
        sc = {
            "duration": 5,
            "parameters": {"gain": gain},
            "assertions": [{"at_end": "Y >= -1"}],
        }
        (app / "scenarios" / f"{name}.yaml").write_text(yaml.safe_dump(sc))
    return app


def _by_scenario(outcomes: list[dict[str, Any]]) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for o in outcomes:
        seen.setdefault(o["scenario"], set()).add(o["status"])
    return seen


def test_a_crash_and_a_hang_are_reported_with_their_seed_and_the_campaign_goes_on(
    tmp_path: Path,
) -> None:
    app = _crashy_app(tmp_path)
    runs = build_matrix(app, scenario_files(app, []), 2, [])
    outcomes = run_matrix(runs, workers=2, timeout_s=5)
    assert _by_scenario(outcomes) == {"ok": {"pass"}, "crash": {"crash"}, "hang": {"timeout"}}
    crash = next(o for o in outcomes if o["status"] == "crash")
    assert "exit code 3" in crash["detail"] and crash["seed"] in (0, 1)
    assert [o["index"] for o in outcomes] == list(range(6))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--faults", "{kind: pump_failed, channel: feed_pump}"], "at at: required key is missing"),
        (["--faults", "{channel: feed_pump, at: 60}"], "needs a 'kind'"),
        (["--faults", "{kind: pump_failed, channel: nope, at: 60}"], "nope"),
        (["--faults", "{kind: pump_failed, channel: feed_pump, at: 99999}"], "not before the end"),
        (["--faults", "{kind: pump_failed, at: [60, 'soon']}"], "at.1"),
        (["--faults", "no_such_file.yaml"], "no_such_file.yaml"),
        (["--seeds", "0"], "expected 1 to 100000"),
        (["--scheduler", "tcp://x:1"], "--scheduler needs --engine dask"),
    ],
)
def test_invalid_input_is_exit_2_before_any_run(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    out = tmp_path / "out"
    res = _campaign(str(BIO), "--scenarios", str(FEED), "--out", str(out), *args, timeout=120)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr
    assert not (out / "campaign.json").exists()


def test_an_invalid_scenario_names_its_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"app": str(BIO), "duration": "1 min", "assertions": [{}]}))
    res = _campaign(str(BIO), "--scenarios", str(_short(tmp_path)), str(bad), timeout=120)
    assert res.returncode == 2
    assert str(bad) in res.stderr and "assertions.0" in res.stderr


def test_the_same_campaign_on_a_dask_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    app = _crashy_app(tmp_path)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        out = tmp_path / "out"
        res = _campaign(
            str(app), "--seeds", "2", "--engine", "dask", "--scheduler", cluster.scheduler_address,
            "--timeout", "8", "--out", str(out),
        )  # fmt: skip
    summary = json.loads((out / "campaign.json").read_text())
    assert res.returncode == 1, res.stderr
    assert _by_scenario(summary["outcomes"]) == {
        "ok": {"pass"},
        "crash": {"crash"},
        "hang": {"timeout"},
    }
    assert summary["engine"].startswith("dask tcp://")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("{kind: pump_failed, at: " + "[" * 2000 + "60" + "]" * 2000 + "}", "nesting depth"),
        ("{kind: pump_failed, at: [.nan]}", "at at.0: expected a finite number"),
        ("{kind: pump_failed, at: [60], x: *a}", "YAML"),
    ],
)
def test_inline_fault_specs_are_read_as_bounded_as_files(spec: str, expected: str) -> None:
    from runtime.bench._campaign_spec import CampaignError, parse_faults

    with pytest.raises(CampaignError) as err:  # the deep one was a RecursionError traceback
        parse_faults([spec])
    assert str(err.value).startswith("--faults #1: cannot read the fault spec") and expected in str(
        err.value
    )

"""`vplc run` with retain paths that cannot work, failing checkpoints, and a kill mid-run."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.state import _file

APP = Path(__file__).resolve().parents[3] / "plc_apps" / "bioreactor"
VPLC = str(Path(sys.executable).with_name("vplc"))


def _run(*extra: str, preexec_fn: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VPLC, "--log-format", "json", "run", str(APP), "--virtual", "--duration", "3", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=preexec_fn,
    )


def _one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = [x for x in res.stderr.splitlines() if x.startswith("vplc")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_a_file_where_the_state_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("")
    real_time = subprocess.run(  # real time keeps retain in $VPLC_STATE_DIR by default
        [VPLC, "run", str(APP), "--no-view", "--duration", "0.5"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"VPLC_STATE_DIR": str(tmp_path / "state")},
    )
    line = _one_line_error(real_time)
    assert "state exists and is not a folder" in line and "bioreactor.retain" in line
    line = _one_line_error(_run("--retain-file", str(tmp_path / "state" / "sub" / "b.retain")))
    assert "cannot create the folder" in line and "Not a directory" in line


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_special_files_as_retain_path_are_exit_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "b.retain"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    line = _one_line_error(_run("--retain-file", str(path)))
    assert str(path) in line and "not a regular file" in line


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "b.retain"
    with path.open("wb") as f:
        f.truncate(3 << 30)
    t0 = time.perf_counter()
    line = _one_line_error(_run("--retain-file", str(path)))
    assert "3,221,225,472 bytes" in line and "--retain-max-mb" in line
    assert time.perf_counter() - t0 < 30  # bounded by start-up, not by reading 3 GiB


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="vplc-ro-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run the CLI as another user",
)
def test_an_unwritable_state_folder_is_exit_2(shared_dir: Path) -> None:
    ro = shared_dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    run = [VPLC, "run", str(APP), "--virtual", "--duration", "1"]
    res = subprocess.run(
        [*as_nobody, *run, "--retain-file", str(ro / "b.retain")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = _one_line_error(res)
    assert f"cannot write in {ro}: Permission denied" in line


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))  # below one checkpoint (~5 KB)


def test_failing_checkpoints_are_reported_once_summarised_and_exit_1(tmp_path: Path) -> None:
    path, stats = tmp_path / "b.retain", tmp_path / "s.json"
    res = _run("--retain-file", str(path), "--stats-json", str(stats), preexec_fn=_limit_file_size)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    events = [json.loads(x) for x in res.stderr.splitlines() if x.startswith("{")]
    failed = [e for e in events if e["event"] == "retain_checkpoint_failed"]
    assert len(failed) == 1 and failed[0]["reason"].startswith("File too large")
    assert "checkpoint write(s) FAILED (still failing; last: File too large" in res.stdout
    retain = json.loads(stats.read_text())["retain"]
    assert retain["errors"] >= 1 and retain["written"] == 0 and retain["failing"]


def test_retain_statistics_reach_the_stats_json_and_the_heartbeat(tmp_path: Path) -> None:
    stats, beat = tmp_path / "s.json", tmp_path / "hb.json"
    res = _run(
        "--retain-file", str(tmp_path / "b.retain"), "--stats-json", str(stats),
        "--heartbeat", str(beat),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    retain = json.loads(stats.read_text())["retain"]
    assert retain["errors"] == 0 and retain["written"] >= 1 and not retain["failing"]
    assert retain["on_disk_seq"] == retain["seq"] >= 1
    assert json.loads(beat.read_text())["statistics"]["retain"]["on_disk_seq"] >= 1
    assert f"retain: {tmp_path / 'b.retain'}: " in res.stdout


def test_a_kill_loses_about_one_second_of_retained_progress(tmp_path: Path) -> None:
    """Real time, default interval: the first checkpoint is at start-up, then one a second."""
    path = tmp_path / "bioreactor.retain"
    proc = subprocess.Popen(
        [VPLC, "run", str(APP), "--no-view", "--duration", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"VPLC_STATE_DIR": str(tmp_path)},
    )
    try:
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.exists(), "no checkpoint at start-up"
        first = _loadable(path)
        time.sleep(3.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    last = _loadable(path)
    assert first["app_time_s"] < 0.5  # taken at start-up, not after an interval
    assert last["seq"] >= first["seq"] + 2 and last["app_time_s"] >= 1.5


def _loadable(path: Path) -> dict[str, Any]:
    """What a restart would load (between a write's two renames only ``.prev`` exists)."""
    for _ in range(100):
        chosen, _other = _file.latest(path)
        if chosen is not None and chosen.doc is not None:
            return chosen.doc
        time.sleep(0.01)
    raise AssertionError(f"no loadable checkpoint at {path}")


def test_a_second_runtime_on_one_retain_file_is_refused_and_a_killed_one_frees_it(
    tmp_path: Path,
) -> None:
    """Two runtimes of one app on one node: the second is exit 2 naming the file and the
    holder, the first goes on checkpointing; after a SIGKILL the next start is not blocked."""
    path = tmp_path / "bioreactor.retain"
    env = os.environ | {"VPLC_STATE_DIR": str(tmp_path)}
    first = subprocess.Popen(
        [VPLC, "run", str(APP), "--no-view", "--duration", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        before = _loadable(path)
        second = subprocess.run(
            [VPLC, "run", str(APP), "--no-view", "--duration", "2"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        line = _one_line_error(second)
        assert str(path) in line and "in use by another runtime" in line, line
        assert f"pid {first.pid}" in line, line
        time.sleep(1.5)
        assert first.poll() is None, "the first runtime must go on"
        assert _loadable(path)["seq"] > before["seq"], "its checkpoints must go on"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    third = subprocess.run(
        [VPLC, "run", str(APP), "--no-view", "--duration", "1"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert third.returncode == 0, third.stderr

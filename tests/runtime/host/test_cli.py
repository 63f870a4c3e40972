"""Drive ``vplc`` as a subprocess, the way a user does: exit codes, messages, trace files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import COPY_LOGIC, MakeApp, memory_manifest

VPLC = str(Path(sys.executable).with_name("vplc"))


def vplc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VPLC, *args], capture_output=True, text=True, timeout=timeout)


def test_validate_ok(make_app: MakeApp) -> None:
    res = vplc("validate", str(make_app()))
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout and "testapp 1.0.0" in res.stdout


def test_validate_bad_manifest_exit_2_one_paragraph(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["tasks"][0]["period_ms"] = 0
    res = vplc("validate", str(make_app(m)))
    assert res.returncode == 2
    assert "app.yaml" in res.stderr and "tasks.0.period_ms" in res.stderr
    assert "Traceback" not in res.stderr


def test_run_bad_manifest_exit_2(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["points"][0]["type"] = "FLOAT"
    res = vplc("run", str(make_app(m)), "--virtual", "--duration", "1")
    assert res.returncode == 2
    assert "points.0.type" in res.stderr


def test_unknown_flag_exit_2(make_app: MakeApp) -> None:
    res = vplc("run", str(make_app()), "--turbo")
    assert res.returncode == 2 and "--turbo" in res.stderr


def test_virtual_needs_duration(make_app: MakeApp) -> None:
    res = vplc("run", str(make_app()), "--virtual")
    assert res.returncode == 2 and "--duration" in res.stderr


def test_negative_duration_refused(make_app: MakeApp) -> None:
    res = vplc("run", str(make_app()), "--virtual", "--duration", "-3")
    assert res.returncode == 2 and "positive" in res.stderr


def test_missing_app_folder(tmp_path: Path) -> None:
    res = vplc("validate", str(tmp_path / "nowhere"))
    assert res.returncode == 2 and "no such app folder" in res.stderr


def test_virtual_run_writes_trace_and_stats(make_app: MakeApp, tmp_path: Path) -> None:
    trace, stats = tmp_path / "t.csv", tmp_path / "s.json"
    res = vplc(
        "run",
        str(make_app()),
        "--virtual",
        "--duration",
        "1",
        "--trace",
        str(trace),
        "--stats-json",
        str(stats),
    )
    assert res.returncode == 0, res.stderr
    lines = trace.read_text().splitlines()
    assert lines[0] == "t,X,Y,inputs.quality,parameters.changed"
    assert len(lines) == 1 + 100
    assert lines[2] == "0.01,0.0,0.0,,"  # X is GOOD, no parameter written
    data = json.loads(stats.read_text())
    assert data["tasks"]["fast"]["cycles"] == 100 and data["state"] == "STOP"
    assert "fast" in res.stdout and "100" in res.stdout


RAISE_LOGIC = """
from runtime import Program

class Main(Program):
    def __init__(self, app):
        super().__init__(app)
        self.y = app.point("Y")

    def execute(self, ctx):
        if ctx.now > 0.5:
            raise RuntimeError("sensor table index out of range")
        self.y.value = 1.0
"""


def test_fault_in_logic_is_logged_and_exit_1(make_app: MakeApp) -> None:
    res = vplc(
        "--log-format",
        "json",
        "run",
        str(make_app(logic=RAISE_LOGIC)),
        "--virtual",
        "--duration",
        "1",
    )
    assert res.returncode == 1
    events = [json.loads(line) for line in res.stderr.splitlines() if line.startswith("{")]
    fault = [e for e in events if e.get("new") == "FAULT"]
    assert fault and fault[0]["program"] == "main" and fault[0]["task"] == "fast"
    assert fault[0]["cycle"] == 52 and "RuntimeError" in fault[0]["reason"]
    assert "sensor table index" in fault[0]["traceback"]
    assert "fault:" in res.stdout


def test_real_time_run_for_a_duration_stops_cleanly(make_app: MakeApp) -> None:
    res = vplc("run", str(make_app()), "--duration", "0.5", "--no-view")
    assert res.returncode == 0, res.stderr
    assert "state STOP" in res.stdout and "safe values" in res.stdout


def test_same_run_twice_gives_identical_traces(make_app: MakeApp, tmp_path: Path) -> None:
    app = str(make_app())
    digests = []
    for i in range(2):
        out = tmp_path / f"trace{i}.csv"
        assert vplc("run", app, "--virtual", "--duration", "2", "--trace", str(out)).returncode == 0
        digests.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("import sys; sys.exit(0)", "SystemExit (sys.exit(0)"),
        ("import sys; sys.exit(3)", "SystemExit (sys.exit(3)"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("raise MemoryError('too big')", "MemoryError: too big"),
    ],
)
@pytest.mark.parametrize("when", ["import", "construct"])
def test_app_code_that_exits_or_interrupts_is_exit_2_with_its_line(
    make_app: MakeApp, statement: str, expected: str, when: str
) -> None:
    if when == "import":
        logic, line = f"{statement}\n{COPY_LOGIC}", 1
    else:
        logic = COPY_LOGIC.replace(
            "        super().__init__(app)\n",
            f"        super().__init__(app)\n        {statement}\n",
        )
        line = logic.splitlines().index(f"        {statement}") + 1
    for command in ("validate", "run"):
        args = ("--virtual", "--duration", "1") if command == "run" else ()
        res = vplc(command, str(make_app(logic=logic)), *args)
        assert res.returncode == 2, (command, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr and "app.yaml" in res.stderr
        assert expected in res.stderr and f"at logic.py:{line}" in res.stderr


def test_validate_refuses_a_misspelt_retain_path(make_app: MakeApp) -> None:
    res = vplc("validate", str(make_app(memory_manifest(retain={"variables": ["main.cuont"]}))))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "app.yaml: at retain.variables.0: 'main.cuont' names no variable" in res.stderr
    ok = vplc("validate", str(make_app(memory_manifest(retain={"variables": ["main.count"]}))))
    assert ok.returncode == 0, ok.stderr


def test_validate_names_the_yaml_path_of_a_driver_option(make_app: MakeApp) -> None:
    m = memory_manifest()
    m["drivers"]["mem"]["options"]["channels"]["x"] = "sideways"
    res = vplc("validate", str(make_app(m)))
    assert res.returncode == 2
    (line,) = res.stderr.strip().splitlines()
    assert "at drivers.mem.options.channels.x:" in line and "errors.pydantic.dev" not in line

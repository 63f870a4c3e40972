"""The live terminal view fits the terminal and shows what an operator needs first."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from hal import Quality
from runtime import ScanEngine, VirtualClock, load_app
from runtime.host._keys import KeyReader
from runtime.host._view import LiveView

APPS = Path(__file__).resolve().parents[3] / "plc_apps"
LOOPS = ("loops.tic101", "loops.tic102", "loops.aic201", "loops.aic301")


@pytest.fixture(autouse=True)
def _no_other_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MQTT session registry is per process: sessions earlier tests left alive (stopped,
    never collected: the engine freezes the collector) are not this view's. The MQTT lines
    are tested with a live bridge in tests/mqtt/test_connection_state.py."""
    monkeypatch.setattr("runtime.host._view.mqtt_connections", lambda: [])


@pytest.fixture(scope="module")
def engine() -> Iterator[ScanEngine]:
    """The bioreactor one hour in (GROW under control), shared: tests undo what they change."""
    engine = ScanEngine(load_app(APPS / "bioreactor"), clock=VirtualClock())
    engine.start()
    engine.run_until(3700 * 10**9)
    yield engine
    engine.close()


def _fits(text: str, width: int, height: int) -> list[str]:
    lines = text.split("\n")
    assert len(lines) <= height, f"{len(lines)} lines for a {height}-line terminal"
    too_wide = [line for line in lines if len(line) > width]
    assert not too_wide, too_wide
    return lines


def _line(lines: list[str], start: str) -> str:
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def test_80x24_shows_the_operator_items_first(engine: ScanEngine) -> None:
    lines = _fits(LiveView(engine).text(80, 24), 80, 24)
    assert re.match(r"bioreactor 1\.\d+\.\d+ +RUN +t 3699\.\d s$", lines[0])
    # task health: both tasks, period, p99 wake/exec and overruns, in ONE line
    assert re.fullmatch(
        r"tasks p99 wake/exec µs: control 200ms \d+/\d+ ov 0 · sequence 1s \d+/\d+ ov 0",
        lines[1],
    )
    assert re.fullmatch(r"batch\.phase RUNNING for 1:0\d:\d\d  step GROW", lines[2])
    units = {"loops.tic101": "degC", "loops.tic102": "degC", "loops.aic201": "pH"}
    for loop in LOOPS:
        row = _line(lines, loop).split()
        pv, pv_unit, sp, sp_unit, out, mode = row[1:7]
        assert pv_unit == sp_unit == units.get(loop, "%")  # SP in its PV's units
        assert mode == "AUTO"
        assert all(re.fullmatch(r"-?\d+\.\d{3}", v) for v in (pv, sp, out)), row
    assert _line(lines, "loops.tic101").split()[3] == "37.000"  # temp_sp, wired
    assert _line(lines, "loops.aic201").split()[3] == "7.000"
    assert "alarms none active" in lines
    # the I/O list takes the rest, and the last line says what is not shown and how to see it
    assert lines[-1].startswith("I/O: ") and "of 21 points" in lines[-1]
    assert "taller terminal" in lines[-1]
    assert any(line.split()[:1] == ["TT101"] for line in lines)


@pytest.mark.parametrize("size", [(60, 20), (80, 24), (100, 30), (120, 40)])
def test_every_size_fits_and_keeps_the_header_tasks_phase_and_loops(
    engine: ScanEngine, size: tuple[int, int]
) -> None:
    width, height = size
    lines = _fits(LiveView(engine).text(width, height), width, height)
    assert lines[0].startswith("bioreactor") and lines[1].startswith("tasks")
    assert lines[2].startswith("batch.phase RUNNING")
    assert all(any(line.startswith(loop) for line in lines) for loop in LOOPS)


def test_a_taller_terminal_shows_the_whole_io_list(engine: ScanEngine) -> None:
    lines = _fits(LiveView(engine).text(80, 40), 80, 40)
    names = {line.split()[0] for line in lines if line.startswith("  ")}
    assert names == {p.name for p in engine.image.points}
    assert lines[-1] == "I/O: all 21 points"


def test_active_alarms_with_priority_come_before_the_io_list(engine: ScanEngine) -> None:
    level = engine.app.programs["alarms"].level  # type: ignore[attr-defined]
    level.ACTIVE = level.UNACKED = level.HH_ACTIVE = level.H_ACTIVE = True
    level.SEVERITY = 2
    try:
        lines = _fits(LiveView(engine).text(80, 24), 80, 24)
    finally:
        level.ACTIVE = level.UNACKED = level.HH_ACTIVE = level.H_ACTIVE = False
        level.SEVERITY = 0
    assert "alarms 1 active, 1 unacknowledged" in lines
    assert re.search(r"^P2 HH H +ACTIVE UNACK +LT401 vessel level$", "\n".join(lines), re.M)


def test_forced_and_bad_points_are_marked_on_every_screen(engine: ScanEngine) -> None:
    tt, do = engine.image["TT101"], engine.image["AT301"]
    saved = do.value, do.timestamp_ns
    tt.force(36.0)
    do.latch(do.value, Quality.BAD, saved[1])
    try:
        view = LiveView(engine)
        lines = _fits(view.text(80, 24), 80, 24)
        tall = view.text(80, 40).split("\n")
    finally:
        tt.unforce()
        do.latch(saved[0], Quality.GOOD, saved[1])
    assert "FORCED 1: TT101=36.000 degC" in lines
    assert "quality 1: AT301 BAD" in lines
    assert _line(lines, "loops.tic101").endswith("AUTO FORCED")  # its PV is forced
    assert _line(lines, "loops.aic301").endswith(" BAD")
    assert re.search(r"^  TT101 +36\.000 degC +GOOD +in  FORCED$", "\n".join(tall), re.M)
    assert re.search(r"^  AT301 +[\d.]+ % +BAD +in", "\n".join(tall), re.M)
    assert "FORCED" not in LiveView(engine).text(80, 24)  # and gone once released


def test_a_fault_shows_its_reason_under_the_header() -> None:
    engine = ScanEngine(load_app(APPS / "bioreactor"), clock=VirtualClock())
    engine.start()
    engine.run_until(10**9)
    reason = "program loops raised ZeroDivisionError: float division by zero " * 2
    engine.fault(reason.strip())
    try:
        lines = _fits(LiveView(engine).text(80, 24), 80, 24)
    finally:
        engine.close()
    assert re.match(r"bioreactor \S+ +FAULT +t", lines[0])
    assert lines[1] + lines[2] == f"FAULT: {reason.strip()}"[:160]  # wrapped, not cut at 80
    assert lines[3].startswith("tasks")


def test_plant10_at_80x24_shares_the_screen_between_phases_loops_and_alarms() -> None:
    engine = ScanEngine(load_app(APPS / "plant10"), clock=VirtualClock())
    engine.start()
    engine.run_until(60 * 10**9)
    try:
        lines = _fits(LiveView(engine).text(80, 24), 80, 24)
    finally:
        engine.close()
    more = [line for line in lines if re.fullmatch(r"  … \d+ more", line)]
    assert len(more) >= 2  # loops and phases cut, each saying how many are not shown
    assert any(line.startswith("R1_batch.phase ") for line in lines)
    assert any(line.startswith("R1_loops.tic101 ") for line in lines)
    assert any(line.startswith("alarms ") for line in lines)
    assert lines[-1].startswith("I/O: ")


def test_the_live_renderable_leaves_the_cursor_line_free(engine: ScanEngine) -> None:
    console = Console(width=80, height=24, record=True, file=io.StringIO())
    console.print(LiveView(engine).render())
    _fits(console.export_text().rstrip("\n"), 80, 23)


def test_keys_page_through_the_whole_io_list_and_back(engine: ScanEngine) -> None:
    view = LiveView(engine)
    view.keys = True
    assert view.text(80, 24).split("\n")[-1].endswith("· i: the full list")
    view.key("i")
    first = _fits(view.text(80, 24), 80, 24)
    assert first[2] == "alarms none active" and first[3].startswith("I/O ")
    assert re.fullmatch(
        r"I/O 1-19 of 21 · space/PgDn next · b/PgUp back · i operator screen", first[-1]
    )
    view.key(" ")
    second = _fits(view.text(80, 24), 80, 24)
    assert second[-1].startswith("I/O 20-21 of 21")
    shown = [line.split()[0] for line in first[4:-1] + second[4:-1]]
    assert shown == [p.name for p in engine.image.points]  # every point once, in order
    view.key("pgdn")  # past the last page: stays there
    assert view.text(80, 24).split("\n")[-1].startswith("I/O 20-21 of 21")
    view.key("pgup")
    assert view.text(80, 24).split("\n")[-1].startswith("I/O 1-19 of 21")
    wide = _fits(view.text(120, 16), 120, 16)  # two columns when the width holds them
    assert wide[-1].startswith("I/O 1-21 of 21") and wide[3].count("quality") == 2
    view.key("i")
    assert view.text(80, 24).split("\n")[2].startswith("batch.phase")


def test_key_reader_takes_single_keys_and_restores_the_terminal() -> None:
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        with KeyReader(slave) as keys:
            assert keys.active and not termios.tcgetattr(slave)[3] & termios.ICANON
            os.write(master, b"i\x1b[6~b")
            assert keys.read(5.0) == ["i", "pgdn", "b"]
            assert keys.read(0.01) == []
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def _read_until(fd: int, out: bytearray, needle: bytes, timeout: float, count: int = 1) -> None:
    end = time.monotonic() + timeout
    while out.count(needle) < count:
        assert time.monotonic() < end, f"{needle!r} not seen in {bytes(out[-2000:])!r}"
        if select.select([fd], [], [], 0.2)[0]:
            out += os.read(fd, 65536)


def _last_frame(raw: bytes) -> list[str]:
    """The last screen rich's Live drew (it erases the previous one line by line)."""
    frame = re.split(r"(?:\x1b\[2K\x1b\[1A)+\x1b\[2K", raw.decode(errors="replace"))[-1]
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frame).replace("\r", "").split("\n")


def test_vplc_run_in_an_80x24_terminal_shows_the_operator_screen(tmp_path: Path) -> None:
    """`make run` (vplc run on the bioreactor, real time) in a real 80x24 pseudo-terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", VPLC_STATE_DIR=str(tmp_path))
    vplc = Path(sys.executable).with_name("vplc")
    proc = subprocess.Popen(
        [str(vplc), "run", str(APPS / "bioreactor")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    out = bytearray()
    try:
        # the third frame: the first is drawn before the first scan (every input still BAD)
        _read_until(master, out, b"i: the full list", 60.0, count=3)
        screen = _last_frame(bytes(out))
        os.write(master, b"i")
        _read_until(master, out, b"i operator screen", 10.0)
        page = _last_frame(bytes(out))
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        os.close(master)
    screen = [line for line in screen if line]
    _fits("\n".join(screen), 80, 23)
    assert re.match(r"bioreactor \S+ +RUN", screen[0]) and screen[1].startswith("tasks")
    assert screen[2].startswith("batch.phase RUNNING")
    assert all(any(line.startswith(loop) for line in screen) for loop in LOOPS)
    assert any(line.startswith("alarms ") for line in screen)
    assert any(line.startswith("I/O 1-") for line in page)

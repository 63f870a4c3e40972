"""SIGKILL a checkpoint writer at random moments: the files always hold a complete checkpoint."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.state import _file
from tests.runtime.state._crash_writer import APP, payload

HELPER = Path(__file__).with_name("_crash_writer.py")
ITERATIONS = 200
BUDGET_S = 25.0  # a loaded machine gets fewer iterations rather than a slow suite
MIN_ITERATIONS = 50


def test_killed_writer_never_leaves_a_torn_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "retain.json"
    rng = random.Random(20240611)
    expected = 0  # the checkpoint the files must hold (or the one being written after it)
    killed_mid_write = 0
    loaded_newer = 0
    t_end = time.monotonic() + BUDGET_S
    done = 0
    for i in range(ITERATIONS):
        proc = subprocess.Popen(
            # -S: no site-packages start-up cost; the helper needs the standard library only
            [sys.executable, "-S", str(HELPER), str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[:1] == ["start"], f"iteration {i}: helper refused the files: {first}"
        assert int(first[1]) == expected, f"iteration {i}: resumed from {first[1]}"
        time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read().split()
        proc.wait()
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        acked = max([expected, *(int(x) for x in rest[1::2])])
        killed_mid_write += _file.tmp_path(path).exists()

        chosen, other = _file.latest(path, app=APP)
        assert chosen is not None and chosen.ok, f"iteration {i}: {chosen and chosen.problem}"
        assert chosen.doc is not None
        n = chosen.doc["data"]["n"]
        # the last acknowledged write, or the one in flight if its final rename happened
        assert n in (acked, acked + 1), f"iteration {i}: loaded {n}, acknowledged {acked}"
        assert chosen.doc["data"] == payload(n) and chosen.doc["seq"] == n
        if other is not None and n > 1:  # the older generation is complete too
            assert other.ok and other.doc is not None
            assert other.doc["data"] == payload(n - 1)
        loaded_newer += n == acked + 1
        expected = n
        done += 1
        if time.monotonic() > t_end:
            break
    assert done >= MIN_ITERATIONS, f"only {done} kill iterations fit in {BUDGET_S} s"
    assert expected > done // 2  # it did write, many times
    # The kills did land inside writes (a .tmp was left behind), or the test proves nothing.
    assert killed_mid_write > 0, (killed_mid_write, loaded_newer)
    print(f"{done} kills, {killed_mid_write} mid-write, {loaded_newer} loaded the in-flight one")

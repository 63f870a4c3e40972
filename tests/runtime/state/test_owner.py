"""One runtime per retain file: the lock is per process, named in the refusal, and released."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtime.state import claim_retain_file, release_retain_file

_CLAIM = """
import sys
from pathlib import Path
from runtime.state import RetainError, claim_retain_file
try:
    claim_retain_file(Path(sys.argv[1]))
except RetainError as exc:
    print(exc)
    sys.exit(2)
"""


def _claim_elsewhere(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CLAIM, str(path)], capture_output=True, text=True, timeout=60
    )


def test_a_held_file_is_refused_to_another_process_until_released(tmp_path: Path) -> None:
    path = tmp_path / "app.retain"
    claim_retain_file(path)
    try:
        claim_retain_file(path)  # the same process again: its own lock, no refusal
        refused = _claim_elsewhere(path)
        assert refused.returncode == 2, refused.stderr
        assert str(path) in refused.stdout and "in use by another runtime" in refused.stdout
        assert "pid " in refused.stdout and "--retain-file" in refused.stdout
    finally:
        release_retain_file(path)
    assert _claim_elsewhere(path).returncode == 0

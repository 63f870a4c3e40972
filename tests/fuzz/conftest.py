"""Fuzz profiles and the counts table.

``make test``: a few dozen derandomized examples per kind (the same ones every run), and a
defect outside the known classes fails at once with the example. ``make fuzz`` (VPLC_FUZZ=1):
``VPLC_FUZZ_EXAMPLES`` (default 10,000) random examples per kind, every outcome counted; the
table is printed at the end and written to ``fuzz-results/summary.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from tests.fuzz._harness import FUZZ, TALLY

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "vplc-test",
    max_examples=int(os.environ.get("VPLC_FUZZ_TEST_EXAMPLES", "30")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW,
)
settings.register_profile(
    "vplc-fuzz",
    max_examples=int(os.environ.get("VPLC_FUZZ_EXAMPLES", "10000")),
    deadline=None,
    database=None,
    suppress_health_check=_SLOW,
)
PROFILE = "vplc-fuzz" if FUZZ else "vplc-test"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY.counts:
        return
    terminalreporter.write_sep("=", f"vplc fuzz counts ({PROFILE})")
    terminalreporter.write_line(TALLY.table())
    if FUZZ:
        out = Path(os.environ.get("VPLC_FUZZ_OUT", "fuzz-results"))
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(TALLY.as_json(), indent=1) + "\n")
        terminalreporter.write_line(f"details: {out / 'summary.json'}")

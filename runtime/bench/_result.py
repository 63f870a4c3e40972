"""The outcome of one scenario run: verdict, failures, assertions, events and recorded series."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.bench._sampler import AssertionResult

__all__ = ["AssertionResult", "ScenarioResult"]


@dataclass
class ScenarioResult:
    """Everything a report needs; ``passed`` and ``failures`` are what tests look at."""

    scenario: str
    app: str
    duration_s: float
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    assertions: list[AssertionResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    sim_s: float = 0.0
    wall_s: float = 0.0
    times: list[float] = field(default_factory=list)
    series: dict[str, list[Any]] = field(default_factory=dict)
    report_dir: Path | None = None
    output_errors: list[str] = field(default_factory=list)  # trace/report writes that failed

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second."""
        return self.sim_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def expression_errors(self) -> list[str]:
        """Conditions that could not be evaluated: the scenario is wrong, not the app."""
        return [a.error for a in self.assertions if a.error]

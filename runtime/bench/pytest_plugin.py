"""pytest plugin: ``plc_apps/<app>/scenarios/*.yaml`` files are collected as test items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

__all__ = ["ScenarioFailedError", "ScenarioFile", "ScenarioItem"]


class ScenarioFailedError(Exception):
    """A scenario ran and an assertion (or the run) failed; args[0] lists the failures."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vplc bench")
    group.addoption(
        "--bench-reports",
        metavar="DIR",
        default=None,
        help="write each scenario's report (JSON, JUnit, trace, plots) to DIR/<scenario>/",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    # A scenario lives in <app>/scenarios/ next to the app's app.yaml; nothing else is taken.
    if (
        file_path.suffix in (".yaml", ".yml")
        and file_path.parent.name == "scenarios"
        and (file_path.parent.parent / "app.yaml").is_file()
    ):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """One scenario file → one test item named after the file."""

    def collect(self) -> list[pytest.Item]:
        return [ScenarioItem.from_parent(self, name=self.path.stem)]


class ScenarioItem(pytest.Item):
    """Runs the scenario in virtual time; the failure message is the failed assertions."""

    def runtest(self) -> None:
        from runtime.bench import run_scenario

        reports = self.config.getoption("--bench-reports")
        out = Path(reports) / self.path.stem if reports else None
        result = run_scenario(self.path, out=out)
        if not result.passed:
            raise ScenarioFailedError("\n".join(result.failures))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from runtime.bench import ScenarioError

        if isinstance(excinfo.value, ScenarioFailedError):
            return f"scenario {self.path.name} failed:\n" + str(excinfo.value.args[0])
        if isinstance(excinfo.value, ScenarioError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.name}"

"""A campaign's matrix: scenarios × seeds × fault timings, validated before any run starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.bench._prepare import prepare
from runtime.bench._schema import Event, Scenario, ScenarioError, Seconds, load_scenario
from runtime.core._loader import unload_app
from runtime.core._yaml import YamlError, parse_yaml, read_yaml_file
from runtime.core.manifest import _format_error

__all__ = ["CampaignError", "FaultVariant", "RunSpec", "build_matrix", "parse_faults"]

_CAMPAIGN_KEYS = ("name", "driver", "at")


class CampaignError(Exception):
    """Invalid campaign input (a scenario, a fault spec): one paragraph naming where."""


class FaultVariant(BaseModel):
    """A fault injected at each of several times: each time is a separate run of the matrix.

    Written ``{kind: pump_failed, channel: feed_pump, at: [10 min, 20 min]}``: ``at``,
    ``name`` and ``driver`` belong to the campaign, every other key is the fault itself (the
    driver's fault set, as a scenario's ``inject`` event).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    driver: str | None = None
    at: list[Seconds] = Field(min_length=1, description="the times the fault starts, one run each")
    inject: dict[str, Any]

    @property
    def label(self) -> str:
        return self.name or "{}:{}".format(
            self.inject.get("kind", "?"), self.inject.get("channel", self.inject.get("utility", ""))
        ).rstrip(":")


@dataclass(frozen=True)
class RunSpec:
    """One cell of the matrix, small and picklable (it travels to a worker process)."""

    index: int
    scenario_file: str
    scenario: str
    seed: int
    fault: str = "none"
    at_s: float | None = None
    inject: dict[str, Any] | None = None
    driver: str | None = None
    # The scenario's declared duration: what the scheduler starts longest first.
    duration_s: float = 0.0
    # The library modules of the app's drivers (e.g. the plant simulator): the forkserver
    # imports them once instead of every run importing them again.
    preload: tuple[str, ...] = ()

    def build(self) -> Scenario:
        """The scenario of this run: the file with this seed and the fault event appended."""
        base = load_scenario(self.scenario_file)
        timeline = list(base.timeline)
        if self.inject is not None:
            event = {"at": self.at_s, "inject": self.inject, "driver": self.driver}
            timeline.append(Event.model_validate(event, by_alias=True))
        return base.model_copy(update={"seed": self.seed, "timeline": timeline})

    def describe(self) -> str:
        fault = "" if self.at_s is None else f", {self.fault} at {self.at_s:g} s"
        return f"{self.scenario} seed {self.seed}{fault}"


def parse_faults(specs: list[str]) -> list[FaultVariant]:
    """Each ``--faults`` value: inline YAML (``{...}`` or ``[...]``) or a YAML file of them."""
    variants: list[FaultVariant] = []
    for number, spec in enumerate(specs, 1):
        where = f"--faults #{number}"
        text = spec.strip()
        try:
            if text.startswith(("{", "[")):  # bounded like a file: depth, aliases, NaN
                data: Any = parse_yaml(text)
            else:
                where = f"--faults #{number} ({spec})"
                data = read_yaml_file(Path(spec))
        except (YamlError, OSError) as exc:
            raise CampaignError(f"{where}: cannot read the fault spec: {exc}") from None
        items = data if isinstance(data, list) else [data]
        for i, item in enumerate(items):
            path = f"{where} at [{i}]" if isinstance(data, list) else where
            variants.append(_variant(item, path))
    return variants


def _variant(item: Any, where: str) -> FaultVariant:
    if not isinstance(item, dict):
        raise CampaignError(
            f"{where}: expected a mapping like {{kind: pump_failed, channel: feed_pump, "
            f"at: [600, 1200]}}, got {type(item).__name__}"
        )
    fields = {k: v for k, v in item.items() if k in _CAMPAIGN_KEYS}
    inject = {k: v for k, v in item.items() if k not in _CAMPAIGN_KEYS}
    if "at" in fields and not isinstance(fields["at"], list):
        fields["at"] = [fields["at"]]
    if "kind" not in inject:
        raise CampaignError(f"{where}: the fault needs a 'kind' (the driver's fault set)")
    try:
        return FaultVariant.model_validate(fields | {"inject": inject})
    except ValidationError as exc:
        problems = "; ".join(
            _format_error(e).replace("manifest schema", "fault spec") for e in exc.errors()
        )
        raise CampaignError(f"{where}, {problems}") from None


def scenario_files(app_dir: Path, refs: list[str]) -> list[Path]:
    """The scenario files: each ref a file or a folder of *.yaml (default: APP/scenarios)."""
    if not refs:
        refs = [str(app_dir / "scenarios")]
    files: list[Path] = []
    for ref in refs:
        path = Path(ref)
        if path.is_dir():
            found = sorted(path.glob("*.yaml"))
            if not found:
                raise CampaignError(f"--scenarios {ref}: no *.yaml in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise CampaignError(f"--scenarios {ref}: no such file or folder")
    return files


def build_matrix(
    app_dir: Path, files: list[Path], seeds: int, faults: list[FaultVariant]
) -> list[RunSpec]:
    """Every run of the campaign, each scenario × fault checked once (the app is loaded).

    Raises CampaignError naming the file and field of the first invalid input: nothing has
    run yet. A scenario without ``app`` runs APP (the campaign's app).
    """
    runs: list[RunSpec] = []
    cells: list[tuple[str | None, float | None, dict[str, Any] | None, str | None]] = [
        ("none", None, None, None)
    ]
    if faults:
        cells = [(f.label, at, f.inject, f.driver) for f in faults for at in f.at]
    for file in files:
        try:
            scenario = load_scenario(file)
        except ScenarioError as exc:
            raise CampaignError(str(exc)) from None
        if scenario.app is None and file.resolve().parent.parent != app_dir.resolve():
            raise CampaignError(
                f"{file}: at app: the scenario names no app and is not in {app_dir}/scenarios; "
                f"give 'app:' (relative to the file)"
            )
        for fault, at, inject, driver in cells:
            probe = RunSpec(0, str(file), scenario.title, 0, fault or "none", at, inject, driver)
            preload = _check(probe, fault)
            runs += [
                RunSpec(
                    len(runs) + s,
                    str(file),
                    scenario.title,
                    s,
                    probe.fault,
                    at,
                    inject,
                    driver,
                    scenario.duration,
                    preload,
                )
                for s in range(seeds)
            ]
    return runs


def _check(probe: RunSpec, fault: str | None) -> tuple[str, ...]:
    """Raise CampaignError if the cell is invalid; the modules of its app's drivers."""
    try:
        prepared = prepare(probe.build())
    except ScenarioError as exc:
        extra = "" if probe.inject is None else f" (with the fault {fault} at {probe.at_s:g} s)"
        raise CampaignError(f"{exc}{extra}") from None
    app = prepared.app
    own = app.package + "."  # an app's own driver is the app's, loaded afresh by each run
    found = {type(d).__module__ for d in app.drivers.values()}
    modules = tuple(sorted(m for m in found if m != app.package and not m.startswith(own)))
    unload_app(app)
    return modules

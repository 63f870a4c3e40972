"""The manifest's ``gmp:`` section: batch definition, critical actions, specification limits.

Declared by the app, checked at load (unknown keys, unknown parameters/points, nonsense
limits are errors with their YAML path). The command path (``runtime.ops._signatures``) asks
which commands need electronic signatures; the batch recorder (``runtime.ops._batch``)
which phase makes a batch and which limits turn an excursion into a deviation.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BatchSpec", "Condition", "CriticalAction", "GmpSpec", "Meaning", "SpecLimit"]

Meaning = Literal["performed", "reviewed", "approved"]
Signable = Literal[
    "set_parameter", "force", "unforce", "phase", "ack_alarm", "start", "stop", "reset"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Condition(_Strict):
    """True while the state leaf at ``path`` (e.g. ``batch.step``) has one of ``in_``."""

    path: str = Field(min_length=3, description="instance path of a state leaf, e.g. batch.step")
    in_: list[str | int | bool] = Field(alias="in", min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CriticalAction(_Strict):
    """Commands that need electronic signatures (21 CFR 11.50/11.200): which, when, by how many.

    ``targets``: parameter names (set_parameter), point names (force/unforce), block paths
    (phase/ack_alarm); empty = every target. ``commands``: for ``phase``, which ISA-88
    commands (empty = all). ``meanings``: the meaning each signer must give, in order; its
    length is the number of signers (two: the two-person rule, by two different people).
    """

    cmd: Signable
    targets: list[str] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)
    during: Condition | None = None
    meanings: list[Meaning] = Field(
        default_factory=lambda: list[Meaning](["performed"]), min_length=1, max_length=3
    )
    description: str = ""

    @model_validator(mode="after")
    def _commands_only_for_phase(self) -> CriticalAction:
        if self.commands and self.cmd != "phase":
            raise ValueError("commands: applies to cmd phase only (ISA-88 commands)")
        return self


class SpecLimit(_Strict):
    """A specification limit: ``signal`` outside [low, high] for longer than ``for_s`` is a
    deviation (its duration and extreme go into the batch record). ``target`` ± ``tolerance``
    is the same as low/high."""

    name: str = Field(min_length=1, max_length=64)
    signal: str
    low: float | None = None
    high: float | None = None
    target: float | None = None
    tolerance: float | None = Field(default=None, gt=0)
    for_s: float = Field(default=0.0, ge=0)
    during: Condition | None = None
    unit: str = ""

    @model_validator(mode="after")
    def _limits(self) -> SpecLimit:
        if (self.target is None) != (self.tolerance is None):
            raise ValueError("target and tolerance go together (target ± tolerance)")
        if self.target is not None and (self.low is not None or self.high is not None):
            raise ValueError("give either target/tolerance or low/high, not both")
        if self.target is None and self.low is None and self.high is None:
            raise ValueError("no limit: give low, high, or target with tolerance")
        lo, hi = self.bounds
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"low {lo} is not below high {hi}")
        return self

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        if self.target is not None and self.tolerance is not None:
            return self.target - self.tolerance, self.target + self.tolerance
        return self.low, self.high


class BatchSpec(_Strict):
    """What makes a batch: the PHASE instance (START → COMPLETE/STOPPED/ABORTED), the step leaf."""

    phase: str = Field(description="PHASE instance path, e.g. batch.phase")
    step: str | None = Field(default=None, description="state leaf naming the step")
    product: str = Field(min_length=1, max_length=128)
    id_prefix: str = Field(default="B", pattern=r"^[A-Za-z0-9_-]{1,16}$")


class GmpSpec(_Strict):
    batch: BatchSpec | None = None
    critical: list[CriticalAction] = Field(default_factory=list)
    specifications: list[SpecLimit] = Field(default_factory=list)

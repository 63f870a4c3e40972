"""Test benches: scenario files, fault injection, virtual-time runs, reports and replay.

A scenario (``plc_apps/<app>/scenarios/*.yaml``, or a ``Scenario`` built in Python) runs an
app in virtual time with a timeline of events and checks assertions on its signals.
"""

from runtime.bench._expr import ExprError
from runtime.bench._replay import ReplayDriver, ReplayError, ReplayResult, replay
from runtime.bench._runner import AssertionResult, ScenarioResult, run_scenario
from runtime.bench._schema import (
    Assertion,
    Bound,
    Event,
    PhaseAction,
    PowerCut,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "Assertion",
    "AssertionResult",
    "Bound",
    "Event",
    "ExprError",
    "PhaseAction",
    "PowerCut",
    "ReplayDriver",
    "ReplayError",
    "ReplayResult",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "load_scenario",
    "parse_scenario",
    "replay",
    "run_scenario",
]

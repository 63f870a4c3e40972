"""Bench reports: results.json, JUnit XML for CI, and PNG trends of the asserted signals."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from runtime.bench._result import AssertionResult, ScenarioResult

log = structlog.get_logger("vplc.bench")

__all__ = ["write_report"]


def write_report(result: ScenarioResult, out: Path) -> None:
    """Write results.json, junit.xml and plots/*.png into ``out`` (the trace is already there)."""
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(result, out / "plots")
    (out / "results.json").write_text(json.dumps(_as_json(result, plots), indent=2) + "\n")
    _junit(result).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; a diverged run must still give a parseable report.
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _as_json(result: ScenarioResult, plots: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = _clean(
        {
            "scenario": result.scenario,
            "app": result.app,
            "passed": result.passed,
            "failures": result.failures,
            "error": result.error,
            "duration_s": result.duration_s,
            "simulated_s": result.sim_s,
            "wall_s": round(result.wall_s, 3),
            "speed_x_real_time": round(result.speed, 1),
            "assertions": [
                {k: v for k, v in asdict(a).items() if k != "signals"} for a in result.assertions
            ],
            "events": result.events,
            "files": {"trace": "trace.csv", "junit": "junit.xml", "plots": plots},
        }
    )
    return data


def _junit(result: ScenarioResult) -> ET.ElementTree[ET.Element]:
    # (label, message, is an error): a condition that could not be evaluated is a JUnit
    # <error> (the test is broken), a condition that did not hold a <failure>.
    cases = [(a.label, a.message, bool(a.error)) for a in result.assertions]
    run_failures = [f for f in result.failures if f not in {m for _, m, _ in cases}]
    cases.insert(0, ("run", "; ".join(run_failures), False))
    suite = ET.Element(
        "testsuite",
        name=f"bench.{result.scenario}",
        tests=str(len(cases)),
        failures=str(sum(1 for _, m, e in cases if m and not e)),
        errors=str(sum(1 for _, _, e in cases if e)),
        time=f"{result.wall_s:.3f}",
    )
    for label, message, error in cases:
        case = ET.SubElement(
            suite, "testcase", classname=f"bench.{result.scenario}", name=label, time="0"
        )
        if error:
            ET.SubElement(case, "error", message=message, type="ExpressionError").text = message
        elif message:
            ET.SubElement(case, "failure", message=message, type="AssertionError").text = message
    root = ET.Element("testsuites", name="vplc bench")
    root.append(suite)
    return ET.ElementTree(root)


def _plots(result: ScenarioResult, folder: Path) -> list[str]:
    if not result.times or not result.assertions:
        return []
    try:
        import matplotlib
    except ImportError:  # an edge image ships without it; the JSON and JUnit reports remain
        log.warning(
            "bench_plots_skipped", reason="matplotlib not installed: pip install vplc[bench]"
        )
        return []

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit, same output everywhere
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, a in enumerate(result.assertions, 1):
        fig, ax = plt.subplots(figsize=(9, 4), dpi=90)
        try:
            _draw(ax, result, a)
            name = f"{i:02d}_{re.sub(r'[^A-Za-z0-9]+', '_', a.label)[:50].strip('_')}.png"
            fig.tight_layout()
            fig.savefig(folder / name)
            written.append(f"plots/{name}")
        finally:
            plt.close(fig)
    return written


def _draw(ax: Any, result: ScenarioResult, a: AssertionResult) -> None:
    t = result.times
    for name in a.signals:
        values = result.series.get(name, [])
        if values and all(isinstance(v, bool | int | float) for v in values):
            ax.plot(t, [float(v) for v in values], label=name, linewidth=1)
        elif values:  # text (a step or phase state): plot its categories as levels
            levels = {v: i for i, v in enumerate(dict.fromkeys(values))}
            ax.step(t, [levels[v] for v in values], where="post", label=f"{name} (level)")
            ax.set_yticks(list(levels.values()), [str(v) for v in levels])
    if a.window is not None:
        ax.axvspan(a.window[0], a.window[1] or t[-1], color="tab:green", alpha=0.08)
    for ev in result.events:
        ax.axvline(ev["at"], color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            ev["action"],
            (ev["at"], 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            rotation=90,
            va="top",
            ha="right",
            color="grey",
        )
    if a.t is not None:
        ax.axvline(a.t, color="tab:green" if a.passed else "tab:red", linewidth=1.2)
    verdict = "PASS" if a.passed else "FAIL"
    ax.set_title(f"{verdict}: {a.label}", fontsize=9, color="black" if a.passed else "tab:red")
    ax.set_xlabel("simulated time (s)")
    ax.grid(True, alpha=0.3)
    if a.signals:
        ax.legend(fontsize=7, loc="best")

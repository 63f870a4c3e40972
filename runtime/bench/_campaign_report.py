"""A campaign's one summary: pass rate, worst cases with their seed, distributions, plots."""

from __future__ import annotations

import html
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["summarise", "write_summary"]

_WORST = 10


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def q(f: float) -> float:
        return ordered[min(len(ordered) - 1, int(f * len(ordered)))]

    return {
        "n": len(ordered),
        "min": ordered[0],
        "p50": statistics.median(ordered),
        "p90": q(0.9),
        "max": ordered[-1],
    }


def summarise(outcomes: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """The summary as data (campaign.json): counts, cells, worst cases, distributions."""
    count: dict[str, int] = defaultdict(int)
    for o in outcomes:
        count[o["status"]] += 1
    cells: dict[tuple[str, str, Any], list[dict[str, Any]]] = defaultdict(list)
    for o in outcomes:
        cells[(o["scenario"], o["fault"], o["at_s"])].append(o)
    responses: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for o in outcomes:
        for label, value in o["responses"].items():
            responses[f"{o['scenario']}: {label}"].append((value, o))
    bad = [o for o in outcomes if o["status"] != "pass"]
    cpu = [o["cpu_s"] for o in outcomes if o.get("cpu_s") is not None]
    slowest = [
        {"figure": label, "value_s": v, **_who(o)}
        for label, pairs in sorted(responses.items())
        for v, o in sorted(pairs, key=lambda p: -p[0])[:1]
    ]
    return meta | {
        "runs": len(outcomes),
        "counts": dict(sorted(count.items())),
        "pass_rate": round(count["pass"] / len(outcomes), 4) if outcomes else 0.0,
        # what the runs cost, whatever else loaded the machine (crashes and hangs excluded)
        "cpu_s_total": round(sum(cpu), 2),
        "cells": [
            {
                "scenario": s,
                "fault": f,
                "at_s": at,
                "runs": len(group),
                "passed": sum(o["status"] == "pass" for o in group),
                "failed_seeds": [o["seed"] for o in group if o["status"] != "pass"],
            }
            for (s, f, at), group in cells.items()
        ],
        "worst": [_who(o) | {"status": o["status"], "why": _why(o)} for o in bad[:_WORST]],
        "slowest_responses": slowest,
        "distributions": {
            "run_wall_s": _spread([o["wall_s"] for o in outcomes]) if outcomes else {},
            "run_cpu_s": _spread(cpu) if cpu else {},
            **{label: _spread([v for v, _ in pairs]) for label, pairs in responses.items()},
        },
        "outcomes": outcomes,
    }


def _who(o: dict[str, Any]) -> dict[str, Any]:
    return {"scenario": o["scenario"], "seed": o["seed"], "fault": o["fault"], "at_s": o["at_s"]}


def _why(o: dict[str, Any]) -> str:
    if o["failures"]:
        return "; ".join(o["failures"][:3])
    return str(o["detail"]).strip().splitlines()[-1] if o["detail"] else o["status"]


def write_summary(summary: dict[str, Any], out: Path) -> list[Path]:
    """campaign.json, campaign.md, campaign.html and the plots; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "campaign.json", out / "campaign.md", out / "campaign.html"]
    written[0].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    plots = _plots(summary, out)
    written[1].write_text(_markdown(summary, plots), encoding="utf-8")
    written[2].write_text(_html(summary, plots), encoding="utf-8")
    return written + plots


def _plots(summary: dict[str, Any], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the bench extra is not installed: the tables still say it all
        return []
    paths: list[Path] = []
    groups: dict[str, list[float]] = defaultdict(list)
    for o in summary["outcomes"]:
        groups["run wall time (s)"].append(o["wall_s"])
        for label, value in o["responses"].items():
            groups[f"{o['scenario']}: {label} (s)"].append(value)
    for i, (title, values) in enumerate(sorted(groups.items())):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.hist(values, bins=min(30, max(5, len(values) // 2)), color="#4477aa")
        ax.set_title(title[:90], fontsize=9)
        ax.set_ylabel("runs")
        fig.tight_layout()
        path = out / f"dist_{i:02d}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _rows(summary: dict[str, Any]) -> list[list[str]]:
    return [
        [
            c["scenario"],
            c["fault"],
            "" if c["at_s"] is None else f"{c['at_s']:g}",
            f"{c['passed']}/{c['runs']}",
            ", ".join(map(str, c["failed_seeds"])),
        ]
        for c in summary["cells"]
    ]


_HEAD = ["scenario", "fault", "at (s)", "passed", "failed seeds"]


def _markdown(summary: dict[str, Any], plots: list[Path]) -> str:
    lines = [
        f"# Campaign {summary['app']}",
        "",
        f"{summary['runs']} runs, pass rate {summary['pass_rate']:.1%} "
        f"({', '.join(f'{k} {v}' for k, v in summary['counts'].items())}); "
        f"{summary['workers']} worker(s) on {summary['engine']}, {summary['wall_s']:.1f} s "
        f"({summary['cpu_s_total']:.1f} s of CPU in the runs).",
        "",
        "| " + " | ".join(_HEAD) + " |",
        "|" + "---|" * len(_HEAD),
        *("| " + " | ".join(r) + " |" for r in _rows(summary)),
        "",
        "## Worst cases",
        "",
        *(
            f"- {w['status'].upper()} {w['scenario']} seed {w['seed']} fault {w['fault']}"
            f"{at_text(w['at_s'])}: {w['why']}"
            for w in summary["worst"]
        ),
        *(["- none: every run passed"] if not summary["worst"] else []),
        "",
        "## Slowest responses",
        "",
        *(
            f"- {s['figure']}: {s['value_s']:g} s (seed {s['seed']}, fault {s['fault']})"
            for s in summary["slowest_responses"]
        ),
        "",
        *(f"![{p.stem}]({p.name})" for p in plots),
        "",
    ]
    return "\n".join(lines)


def at_text(at_s: float | None) -> str:
    return "" if at_s is None else f" at {at_s:g} s"


def _html(summary: dict[str, Any], plots: list[Path]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in _HEAD)
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in _rows(summary)
    )
    worst = "".join(
        f"<li>{esc(w['status'].upper())} {esc(w['scenario'])} seed {w['seed']} "
        f"fault {esc(str(w['fault']))}: {esc(w['why'])}</li>"
        for w in summary["worst"]
    )
    imgs = "".join(f'<img src="{esc(p.name)}" alt="{esc(p.stem)}">' for p in plots)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Campaign "
        f"{esc(summary['app'])}</title></head><body><h1>Campaign {esc(summary['app'])}</h1>"
        f"<p>{summary['runs']} runs, pass rate {summary['pass_rate']:.1%}</p>"
        f"<table border='1'><tr>{head}</tr>{rows}</table><h2>Worst cases</h2>"
        f"<ul>{worst or '<li>none: every run passed</li>'}</ul>{imgs}</body></html>\n"
    )

"""Web HMI figures (issue 17) on plant10 (2,610 points streaming): value change in the scan →
DOM text (p50/p99), the scan's p99 wake latency with 5 browsers vs no HMI, page load time.

Browsers are Playwright pages in Debian's chromium (tests/web installs it with apt).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from runtime import load_app
from runtime.host import Realtime, Runtime
from runtime.ops._access import hash_token
from runtime.web import WebConfig
from tests.mqtt.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
PLANT10 = ROOT / "plc_apps" / "plant10"
WINDOW_S = 15.0
BROWSERS = 5
CHANGES = 60  # forced value changes timed from the scan to the DOM
PASSWORD = "bench-secret"

# In the page: every text change of the watched cell, with its wall time (ms since epoch);
# and, from a second stream of the same session, when each message carrying the point arrived
# and when the web process had sampled it (its wall_ms): the chain split into its stages.
OBSERVE = """(i) => {
  window.__seen = [];
  window.__recv = [];
  const cell = document.querySelector(`[data-pt="${i}"]`);
  new MutationObserver(() => window.__seen.push([performance.timeOrigin + performance.now(),
    cell.textContent])).observe(cell, {childList: true, characterData: true, subtree: true});
  const es = new EventSource("/api/stream");
  es.onmessage = (e) => {
    const at = performance.timeOrigin + performance.now();
    const msg = JSON.parse(e.data);
    if (msg.v && msg.v[i] !== undefined && msg.v[i] !== null)
      window.__recv.push([at, msg.wall_ms, msg.v[i]]);
  };
  return !!cell;
}"""


class _Probe:
    """A cycle hook ahead of the HMI's: when the watched point's value changed in the scan."""

    def __init__(self) -> None:
        self.point: Any = None
        self.last: Any = None
        self.changed_ms: dict[float, float] = {}

    def __call__(self, task: Any, now_ns: int) -> None:
        p = self.point
        if p is not None and p.value != self.last:
            self.last = p.value
            self.changed_ms.setdefault(p.value, time.time() * 1000)


def _runtime(web: bool, probe: _Probe | None = None) -> tuple[Runtime, WebConfig | None]:
    app = load_app(PLANT10)
    cfg = None
    if web:
        folder = Path(tempfile.mkdtemp(prefix="vplc-bench-web-"))
        users = {"bench": {"role": "engineer", "token_sha256": hash_token(PASSWORD)}}
        (folder / "access.yaml").write_text(yaml.safe_dump({"users": users}))
        cfg = WebConfig(host="127.0.0.1", port=free_port(), access_file=folder / "access.yaml")
    # As `vplc run` starts it: the real-time settings the OS permits (SCHED_FIFO, pinning).
    runtime = Runtime(app, web=cfg, hooks=[probe] if probe else [], realtime=Realtime(auto=True))
    runtime.start(thread=True)
    if runtime.web is not None:
        assert runtime.web.wait_started(60), "the web HMI did not start"
    return runtime, cfg


def _window(runtime: Runtime) -> dict[str, Any]:
    """Wake latency and execution time of the fastest task over WINDOW_S."""
    task = min(runtime.engine.tasks, key=lambda t: t.period_ns)
    task.stats.reset()
    time.sleep(WINDOW_S)
    s = task.stats.as_dict()
    return {"task": task.name, "period_ms": task.period_ns / 1e6, "cycles": s["cycles"],
            "wake_latency_us": s["wake_latency_us"], "exec_us": s["exec_us"]}  # fmt: skip


def _cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _close(runtime: Runtime) -> None:
    runtime.stop_thread(5)
    runtime.close()


def _login(browser: Any, url: str) -> Any:
    # The page's CSP forbids eval, which Playwright's evaluate needs: off for measuring only.
    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(url)
    page.get_by_label("User").fill("bench")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector('[data-pt="0"]')
    return page


def _page_load(context: Any, url: str) -> float:
    """A logged-in browser opening the HMI: navigation → first live value in the DOM (ms)."""
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("document.querySelector('[data-pt=\"0\"]')?.textContent.length > 0")
    ms = (time.perf_counter() - t0) * 1000
    page.close()
    return ms


def _latency(runtime: Runtime, page: Any, probe: _Probe) -> tuple[list[float], dict[str, Any]]:
    """Force a point to new values; time each from the end of the cycle that first had it
    (the probe hook) until the browser's DOM shows it."""
    engine = runtime.engine
    point = next(p for p in engine.image.points if p.type.is_numeric and p.spec.unit)
    i = engine.image.points.index(point)
    assert page.evaluate(OBSERVE, i)
    probe.point = point
    for k in range(CHANGES):
        value = 1000.0 + k
        engine.submit(lambda e, v=value: point.force(v)).result(5)
        time.sleep(0.5)
    sent = {round(v): t for v, t in probe.changed_ms.items() if v >= 1000}
    engine.submit(lambda e: point.unforce()).result(5)
    page.wait_for_timeout(1000)
    seen: list[list[Any]] = page.evaluate("window.__seen")
    shown: dict[int, float] = {}
    for at, text in seen:
        try:
            v = round(float(str(text).split()[0]))
        except ValueError:
            continue
        shown.setdefault(v, at)
    recv: dict[int, tuple[float, float]] = {}
    for at, wall, value in page.evaluate("window.__recv"):
        recv.setdefault(round(value), (at, wall))
    both = [v for v in sent if v in shown and v in recv]
    stages = {
        "scan_to_web_sample": sorted(recv[v][1] - sent[v] for v in both),
        "web_sample_to_browser": sorted(recv[v][0] - recv[v][1] for v in both),
        "browser_to_dom": sorted(shown[v] - recv[v][0] for v in both),
    }
    split = {k: {"p50": _pct(x, 0.5), "p99": _pct(x, 0.99)} for k, x in stages.items()}
    return sorted(shown[v] - sent[v] for v in sent if v in shown), split


def _pct(values: list[float], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else 0.0


def run() -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from tests.web.test_browser import chromium_path

    chromium = chromium_path()
    bare, _ = _runtime(web=False)
    try:
        time.sleep(2)
        no_hmi = _window(bare)
    finally:
        _close(bare)
    probe = _Probe()
    runtime, cfg = _runtime(web=True, probe=probe)
    assert cfg is not None and runtime.web is not None
    url = runtime.web.url
    try:
        time.sleep(2)
        hmi_idle = _window(runtime)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            pages = [_login(browser, url) for _ in range(BROWSERS)]
            loads = [_page_load(pages[0].context, url) for _ in range(5)]
            latencies, split = _latency(runtime, pages[0], probe)
            pid = runtime.web.child_pid
            cpu0, t0 = _cpu_s(pid), time.perf_counter()
            loaded = _window(runtime)
            web_cpu = 100 * (_cpu_s(pid) - cpu0) / (time.perf_counter() - t0)
            web_stats = runtime.web.statistics()
            browser.close()
    finally:
        _close(runtime)
    base = max(no_hmi["wake_latency_us"]["p99"], 1.0)
    return {
        "app": "plant10",
        "points": len(load_app(PLANT10).image.points),
        "sample_ms": cfg.sample_ms,
        "value_to_dom_ms": {
            "changes": CHANGES,
            "seen": len(latencies),
            "p50": _pct(latencies, 0.5),
            "p99": _pct(latencies, 0.99),
            "max": round(max(latencies), 1) if latencies else None,
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
            "goal_p99_ms": 250,
            "stages_ms": split,
        },
        "web_child_cpu_pct_5_browsers": round(web_cpu, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "page_load_ms": {"p50": round(statistics.median(loads), 1), "max": round(max(loads), 1)},
        "scan_no_hmi": no_hmi,
        "scan_hmi_no_browser": hmi_idle,
        "scan_hmi_5_browsers": loaded,
        "wake_p99_ratio_5_browsers_vs_no_hmi": round(loaded["wake_latency_us"]["p99"] / base, 2),
        "wake_p99_ratio_hmi_idle_vs_no_hmi": round(hmi_idle["wake_latency_us"]["p99"] / base, 2),
        "goal_ratio": 1.2,
        "web": {k: web_stats.get(k) for k in ("hub", "queries", "sessions", "writer")},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))

"""A full bioreactor batch in virtual time, scripted operator actions, and its batch record.

The record's timeline, parameter changes, alarm, deviation and signatures are checked against
the CSV trace of the same run (the recorder samples the same cycles the trace writes) and
against the audit trail; then the exports (JSON, PDF read back with pypdf) and their verdict
when the trail or the record is tampered with.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from runtime.core._clock import VirtualClock
from runtime.core._engine import ScanEngine
from runtime.core._loader import load_app
from runtime.host._trace import TraceRecorder
from runtime.host.cli import main
from runtime.ops._access import load_access_config
from runtime.ops._audit import AuditLog
from runtime.ops._audit_key import load_verify_key, public_path
from runtime.ops._batch import BatchRecorder
from runtime.ops._batch_store import check_record, load_record
from runtime.ops._command_handler import CommandHandler
from runtime.ops._commands import CommandResponse, apply_now
from tests.runtime.ops.test_user_access import PW, access_file, make_store

APP = Path(__file__).parents[3] / "plc_apps" / "bioreactor"
S = 10**9


pytestmark = pytest.mark.usefixtures("logging_restored")


class Batch:
    """One bioreactor batch, its trace, audit trail, users and batch recorder."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        app = load_app(APP)
        app.parameters["heat_settle_s"].set(60.0)  # set before start, as a recipe would
        app.parameters["grow_duration_h"].set(0.5)
        self.app = app
        self.engine = ScanEngine(app, clock=VirtualClock())
        self.trace = TraceRecorder(
            tmp / "trace.csv", app.image, threaded=False, parameters=app.parameters
        )
        self.engine.add_cycle_hook(self.trace)
        make_store(tmp / "users.json", {"ann": "operator", "quinn": "engineer", "eve": "engineer"})
        self.key = tmp / "key.pem"
        self.audit = AuditLog(tmp / "audit.jsonl", key_file=self.key, fsync=False)
        self.handler = CommandHandler(
            None,
            access=load_access_config(access_file(tmp)),
            audit=self.audit,
            app=app.name,
            apply=lambda cmd: apply_now(self.engine, cmd),
        )
        self.recorder = BatchRecorder(self.engine, tmp / "batches", audit=self.audit)
        self.n = 0
        self.engine.start()

    def run_to(self, seconds: float) -> None:
        self.engine.run_until(round(seconds * S))

    def send(self, user: str, **body: Any) -> CommandResponse:
        self.n += 1
        msg = {"id": f"c{self.n}", "ts": datetime.now(UTC).isoformat(), "user": user,
               "token": PW, **body}  # fmt: skip
        resp = self.handler.handle_payload(json.dumps(msg))
        assert resp.status in ("accepted", "preview"), resp.reason
        return resp

    def signed(self, signers: list[tuple[str, str]], **body: Any) -> CommandResponse:
        digest = self.send(signers[0][0], **body, preview=True).new["content_hash"]
        sigs = [{"user": u, "password": PW, "meaning": m, "content_hash": digest}
                for u, m in signers]  # fmt: skip
        return self.send(signers[0][0], **body, signatures=sigs)

    def finish(self) -> dict[str, Any]:
        self.engine.close()
        self.trace.close()
        written = self.recorder.close()
        assert self.recorder.errors == [] and len(written) == 1
        return dict(json.loads(written[0].read_text()))


TWO = [("ann", "performed"), ("quinn", "approved")]
ENGINEERS = [("quinn", "performed"), ("eve", "approved")]


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> tuple[Batch, dict[str, Any]]:
    b = Batch(tmp_path_factory.mktemp("batch"))
    b.run_to(1200)  # in GROW since ~1056 s
    assert b.app.tree.leaves()["batch.step"][0].step == "GROW"  # type: ignore[attr-defined]
    set_sp = {"cmd": "set_parameter", "name": "temp_sp"}
    b.signed(TWO, **set_sp, value=38.5, reason="temperature shift study")
    b.run_to(1500)
    b.signed(TWO, **set_sp, value=37.0, reason="back to nominal")
    b.run_to(1600)
    b.signed(ENGINEERS, cmd="force", point="LT401", value=92.0, reason="level alarm test")
    b.run_to(1640)
    b.send("ann", cmd="ack_alarm", block="alarms.level", reason="seen: forced for the test")
    b.run_to(1650)
    b.send("quinn", cmd="unforce", point="LT401", reason="test over")
    b.run_to(1700)
    b.send("ann", cmd="phase", block="batch.phase", command="HOLD", reason="sampling")
    b.run_to(1800)
    b.send("ann", cmd="phase", block="batch.phase", command="RESTART", reason="sample taken")
    b.run_to(4500)
    return b, b.finish()


def _trace(b: Batch) -> list[dict[str, str]]:
    with (b.tmp / "trace.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_timeline_matches_the_trace(done: tuple[Batch, dict[str, Any]]) -> None:
    b, rec = done
    assert rec["summary"]["status"] == "COMPLETE"
    assert rec["summary"]["steps"] == ["FILL", "HEAT", "GROW", "HARVEST", "DONE"]
    phases = [e["to"] for e in rec["timeline"] if e["kind"] == "phase"]
    assert phases == ["RUNNING", "HOLDING", "HELD", "RESTARTING", "RUNNING", "COMPLETE"]
    hold = next(e for e in rec["timeline"] if e.get("to") == "HOLDING")
    assert hold["by"]["user"] == "ann" and 1700 <= hold["t_s"] <= 1701
    rows = _trace(b)
    step_t = {e["to"]: e["t_s"] for e in rec["timeline"] if e["kind"] == "step"}
    # The batch (1 s task) changes step in one cycle and drives the step's outputs from its
    # next; the trace's rows are the 200 ms control task's, which runs first at a shared time.
    last_fill = max(float(r["t"]) for r in rows if float(r["XV401F"]) == 100.0)
    assert last_fill == pytest.approx(step_t["HEAT"] + 1.0)
    first_harvest = min(float(r["t"]) for r in rows if float(r["P401H"]) == 100.0)
    assert first_harvest == pytest.approx(step_t["HARVEST"] + 1.2)
    assert rec["header"]["end"]["t_s"] == pytest.approx(step_t["DONE"] + 1.0)


def test_parameter_changes_and_signatures_match_trace_and_audit(
    done: tuple[Batch, dict[str, Any]],
) -> None:
    b, rec = done
    assert rec["parameters"]["at_start"]["temp_sp"] == 37.0
    assert rec["parameters"]["at_start"]["grow_duration_h"] == 0.5
    changes = rec["parameters"]["changes"]
    assert [(c["name"], c["old"], c["new"], c["user"]) for c in changes] == [
        ("temp_sp", 37.0, 38.5, "ann"), ("temp_sp", 38.5, 37.0, "ann")]  # fmt: skip
    assert changes[0]["why"] == "temperature shift study"
    in_trace = [float(r["t"]) for r in _trace(b) if "temp_sp=38.5" in r["parameters.changed"]]
    assert in_trace and in_trace[0] == pytest.approx(changes[0]["t_s"] + 0.2)
    audited = {r["id"]: r for r in b.audit.records() if r.get("event") == "command"}
    for change in changes:
        names = [(s["printed_name"], s["meaning"]) for s in change["signatures"]]
        assert names == [("Ann Tester", "performed"), ("Quinn Tester", "approved")]
        assert change["signatures"] == audited[change["command_id"]]["signatures"]
    force = next(a for a in rec["operator_actions"] if a["cmd"] == "force")
    assert [s["user_id"] for s in force["signatures"]] == ["quinn", "eve"]
    assert rec["summary"]["signatures"] == 6
    assert rec["header"]["operators"] == ["ann", "eve", "quinn"]


def test_alarm_episode_with_acknowledge(done: tuple[Batch, dict[str, Any]]) -> None:
    b, rec = done
    level = [a for a in rec["alarms"] if a["alarm"] == "alarms.level"]
    assert len(level) == 1
    alarm = level[0]
    assert alarm["limits"][:1] == ["HH"] or "H" in alarm["limits"]
    # Forced at 1600 s, 5 s on-delay; the trace shows the forced value from the next cycle.
    forced = min(float(r["t"]) for r in _trace(b) if float(r["LT401"]) == 92.0)
    assert forced + 5.0 <= alarm["activated"]["t_s"] <= forced + 5.4
    ack = alarm["acknowledged"]
    assert ack["by"]["user"] == "ann" and ack["comment"] == "seen: forced for the test"
    assert 1640 - 0.2 <= ack["t_s"] <= 1640
    assert 1650 <= alarm["cleared"]["t_s"] <= 1650.4


def test_deviation_from_the_specification_matches_the_trace(
    done: tuple[Batch, dict[str, Any]],
) -> None:
    b, rec = done
    devs = [d for d in rec["deviations"] if d["spec"] == "temperature"]
    # Recomputed from the trace: runs of samples above 37.5 °C in GROW (step from the record),
    # from the first sample outside to the first back inside; longer than 60 s: a deviation.
    grow = next(e["t_s"] for e in rec["timeline"] if e.get("to") == "GROW")
    harvest = next(e["t_s"] for e in rec["timeline"] if e.get("to") == "HARVEST")
    runs, start, peak = [], None, 0.0
    for row in _trace(b):
        t, v = float(row["t"]), float(row["TT101"])
        out = grow < t <= harvest and (v > 37.5 or v < 36.5)
        if out and start is None:
            start, peak = t, v
        elif out:
            peak = max(peak, v)
        elif start is not None:
            runs.append((start, t, peak))
            start = None
    long = [r for r in runs if r[1] - r[0] > 60.0]
    assert len(long) == len(devs) == 1, (long, devs)
    dev = devs[0]
    assert (dev["start"]["t_s"], dev["end"]["t_s"]) == pytest.approx(long[0][:2])
    assert dev["duration_s"] == pytest.approx(long[0][1] - long[0][0])
    assert dev["extreme"] == long[0][2] and 1200 < dev["extreme_at"]["t_s"] < long[0][1]
    assert dev["side"] == "high" and not dev["ongoing_at_end"]
    short = rec["summary"]["excursions_within_allowance"]["temperature"]
    assert short == len(runs) - 1 and short > 0  # the probe's noise at the limit


def test_record_is_anchored_and_exports_verify(
    done: tuple[Batch, dict[str, Any]], tmp_path: Path
) -> None:
    b, rec = done
    key = load_verify_key(public_path(b.key))
    check = check_record(rec, key=key)
    assert check.ok, check.lines
    anchors = [r for r in b.audit.records() if r.get("event") == "batch_record"]
    assert anchors[-1]["sha256"] == rec["integrity"]["sha256"]
    bid = rec["header"]["batch_id"]
    base = [
        "batch",
        "record",
        bid,
        "--dir",
        str(b.tmp / "batches"),
        "--key",
        str(public_path(b.key)),
    ]
    assert main([*base, "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["verification"]["ok"] is True
    assert main([*base, "--pdf", str(tmp_path / "r.pdf")]) == 0
    text = "\n".join(p.extract_text() for p in PdfReader(tmp_path / "r.pdf").pages)
    needles = [bid, "INTEGRITY VERIFIED", "mAb-101", "Quinn Tester", "temp_sp", "alarms.level"]
    needles += ["temperature (TT101)", "HOLDING", rec["integrity"]["sha256"]]
    for needle in needles:
        assert needle in text, needle
    assert main(["batch", "list", "--dir", str(b.tmp / "batches")]) == 0


def test_tampered_trail_or_record_is_not_claimed_intact(
    done: tuple[Batch, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    b, rec = done
    lines = (b.tmp / "audit.jsonl").read_text().splitlines(keepends=True)
    n = next(i for i, x in enumerate(lines) if "temperature shift study" in x)
    lines[n] = lines[n].replace("temperature shift study", "temperature shift studied")
    bad = tmp_path / "audit.jsonl"
    bad.write_text("".join(lines))
    (tmp_path / "audit.jsonl.head").write_bytes((b.tmp / "audit.jsonl.head").read_bytes())
    key = load_verify_key(public_path(b.key))
    check = check_record(rec, trail=bad, key=key)
    assert not check.ok and f"at record {n + 1}" in check.summary()
    bid = rec["header"]["batch_id"]
    args = ["batch", "record", bid, "--dir", str(b.tmp / "batches"), "--audit", str(bad),
            "--key", str(public_path(b.key)), "--pdf", str(tmp_path / "bad.pdf")]  # fmt: skip
    assert main(args) == 1
    text = PdfReader(tmp_path / "bad.pdf").pages[0].extract_text()
    assert "INTEGRITY NOT VERIFIED" in text and f"at record {n + 1}" in text
    edited = load_record(b.tmp / "batches", bid)
    edited["parameters"]["changes"][0]["new"] = 37.2
    check = check_record(edited, key=key)
    assert not check.ok and "it was edited" in check.summary()
    assert main(["batch", "record", "BR-20000101-999", "--dir", str(b.tmp / "batches"),
                 "--json", str(tmp_path / "x.json")]) == 2  # fmt: skip
    assert "no batch record 'BR-20000101-999'" in capsys.readouterr().err

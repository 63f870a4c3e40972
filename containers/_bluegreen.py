"""Blue-green handover orchestration over MQTT: release → claim → probation → yield or rollback.

The deployer talks to both instances through their command topics (``P/cmd``, answers on
``P/cmd/response``; see runtime/mqtt/TOPICS.md) and reads the plant's write log from
``<plant>/stats`` (``vplc sim serve``): the output gap is measured on the I/O side, where it
matters, and on the runtime side (the old one's release mark → the new one's first cycle).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hal.mqtt import BrokerOptions, Inbound, MqttError, MqttSession, SessionHandler

__all__ = ["HandoverFailedError", "MqttCommander", "blue_green_handover"]

_SEND_TIMEOUT_S = 5.0


class HandoverFailedError(Exception):
    """The handover did not complete; ``report`` says how far it got and what was undone."""

    def __init__(self, reason: str, report: dict[str, Any]) -> None:
        super().__init__(reason)
        self.report = report


class MqttCommander(SessionHandler):
    """Sends commands to app instances and keeps the latest plant statistics.

    A synchronous facade over the shared MQTT session (its own thread and loop): the
    deployer's code calls ``command`` and waits for the answer. The connection is the
    runtime's (TLS, login, backoff, loud failures); command tokens are credentials, so plain
    TCP needs ``allow_insecure`` in the broker options.
    """

    def __init__(
        self,
        broker: BrokerOptions,
        *,
        user: str,
        token: str,
        plant: str,
        connect_timeout_s: float | None = None,
    ) -> None:
        self.user, self.token, self.plant = user, token, plant
        self._answers: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self.plant_stats: dict[str, Any] | None = None
        self.session = MqttSession(
            broker,
            self,
            client_id=f"vplc-deployer-{uuid.uuid4().hex[:8]}",
            name=f"deployer {plant}",
            subscriptions=[(f"{plant}/stats", 0), ("vplc/+/+/+/cmd/response", 1)],
            secrets="command tokens (the deployer's handover commands)",
        )
        self.session.start("mqtt-deployer")
        if not self.session.connected.wait(connect_timeout_s or broker.connect_timeout_s + 1):
            status = self.session.connection_status()
            self.session.stop(1.0)
            raise ConnectionError(status["last_error"] or "no connection in time")

    async def on_message(self, session: MqttSession, msg: Inbound) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self._cond:
            if msg.topic == f"{self.plant}/stats":
                self.plant_stats = body
            elif isinstance(body, dict) and isinstance(body.get("id"), str):
                self._answers[body["id"]] = body
            self._cond.notify_all()

    def command(self, prefix: str, cmd: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
        """One command to the instance at ``prefix``; its response (accepted or refused)."""
        cid = f"bg-{uuid.uuid4().hex[:12]}"
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")  # commands are single-use
        body = {"id": cid, "ts": ts, "cmd": cmd, "user": self.user, "token": self.token, **args}
        payload = json.dumps(body).encode()
        session = self.session

        async def send() -> None:
            # Queued, not awaited: the answer is the acknowledgement that matters.
            session.publish_nowait(f"{prefix}/cmd", payload, qos=1)

        try:
            session.call(send(), _SEND_TIMEOUT_S)
        except (MqttError, TimeoutError) as exc:
            return {"id": cid, "cmd": cmd, "status": "refused", "reason": f"not sent: {exc}"}
        with self._cond:
            if not self._cond.wait_for(lambda: cid in self._answers, timeout):
                return {"id": cid, "cmd": cmd, "status": "refused", "reason": "no answer"}
            return self._answers.pop(cid)

    def stats_after(self, t_wall: float, timeout: float = 5.0) -> dict[str, Any] | None:
        """The first plant statistics received after ``time.monotonic()`` reached t_wall."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with self._cond:
                stats = self.plant_stats
                if stats is not None and time.monotonic() > t_wall:
                    self.plant_stats = None  # the next one is certainly newer
                    if self._cond.wait_for(lambda: self.plant_stats is not None, timeout):
                        return self.plant_stats
        return None

    def close(self) -> None:
        self.session.stop(2.0)


# Called during the probation by the deployer: a problem the MQTT status cannot show (the
# container exited or restarted, its heartbeat stalled) as a reason, or None.
Watch = Callable[[], "str | None"]


def blue_green_handover(
    cmdr: MqttCommander,
    *,
    old: str,
    new: str,
    probation_s: float = 2.0,
    watch: Watch | None = None,
) -> dict[str, Any]:
    """Hand the outputs from ``old`` to ``new`` (command prefixes); roll back on failure.

    Returns the report (epochs, gap on both sides, timeline, the standby's merge ``plan`` when
    its claim answer carries one); raises HandoverFailedError with the report after a rollback.
    """
    report: dict[str, Any] = {"strategy": "blue-green", "old": old, "new": new}
    report["outcome"] = "refused"  # until the release is armed nothing has changed
    t0 = time.monotonic()
    st_new = cmdr.command(new, "handover_status")
    st_old = cmdr.command(old, "handover_status")
    if st_new["status"] != "accepted" or st_new["new"]["mode"] != "standby":
        raise HandoverFailedError(f"new instance is not a standby: {st_new}", report)
    if st_old["status"] != "accepted" or st_old["new"]["mode"] != "active":
        raise HandoverFailedError(f"old instance is not an active owner: {st_old}", report)
    from_epoch = st_old["new"]["max_epoch_seen"]
    epoch = (from_epoch or 0) + 1
    report["from_epoch"], report["epoch"] = from_epoch, epoch
    rel = _release(cmdr, old, report)
    t_rel = time.monotonic()
    report["release_cycle"] = rel["cycle"]
    period_s = rel["period_ns"] / 1e9
    claimed = cmdr.command(new, "handover_claim", release=rel, epoch=epoch)
    report["release_to_claim_ms"] = round((time.monotonic() - t_rel) * 1000, 1)
    report["handover_ms"] = round((time.monotonic() - t0) * 1000, 1)
    plan = claim_plan(claimed)
    if plan is not None:
        report["plan"] = plan
    if claimed["status"] != "accepted":
        return _rollback(cmdr, old, report, f"claim refused: {claimed['reason']}")
    report["skipped_releases"] = claimed["new"]["skipped_releases"]
    status, why = _probation(cmdr, new, probation_s, watch)
    if why is not None or status is None:
        return _rollback(cmdr, old, report, f"new instance failed its probation: {why}")
    old_status = cmdr.command(old, "handover_status")["new"]
    report["old_mode"] = old_status["mode"] if old_status else None
    if old_status and old_status["events"].get("released") and status["events"].get("first_cycle"):
        gap_s = status["events"]["first_cycle"]["wall"] - old_status["events"]["released"]["wall"]
        report["runtime_gap_s"] = round(gap_s, 4)
        report["runtime_gap_cycles"] = round(gap_s / period_s, 2)
    report |= plant_gap(cmdr, from_epoch, epoch, period_s)
    report["outcome"] = "ok"
    return report


def _release(cmdr: MqttCommander, old: str, report: dict[str, Any]) -> dict[str, Any]:
    """Arm the old instance's release, then fetch its answer (it releases after a cycle).

    Each poll is a command, counted against the deployer user's command rate (10/s, burst 20
    by default): the polls back off from 2 ms to 40 ms, so their number does not grow with the
    speed of the link (a 5 ms answer and a 2 ms pause would be ~140 polls per second).
    """
    deadline = time.monotonic() + 5.0
    pause = 0.002
    while time.monotonic() < deadline:
        answer = cmdr.command(old, "handover_release", reason="blue-green update")
        if answer["status"] != "accepted":
            if report.get("armed"):
                _rollback(cmdr, old, report, f"release failed: {answer['reason']}")
            raise HandoverFailedError(f"release refused: {answer['reason']}", report)
        report["armed"] = True
        if not answer["new"].get("pending"):
            rel: dict[str, Any] = answer["new"]
            return rel
        time.sleep(pause)
        pause = min(pause * 2, 0.04)
    _rollback(cmdr, old, report, "the old instance did not release within 5 s")
    raise AssertionError("unreachable")


def claim_plan(claimed: dict[str, Any]) -> dict[str, Any] | None:
    """The state-merge plan the standby reports with its claim answer (accepted or refused).

    The standby computes it when it restores the old version's snapshot through the merge
    (runtime/state); the deployer only records it in the audit trail.
    """
    for where in (claimed.get("new"), claimed):
        if isinstance(where, dict) and isinstance(where.get("plan"), dict):
            return dict(where["plan"])
    return None


def _probation(
    cmdr: MqttCommander, new: str, probation_s: float, watch: Watch | None
) -> tuple[dict[str, Any] | None, str | None]:
    """(last status, why it failed or None): the new owner watched for ``probation_s``."""
    deadline = time.monotonic() + probation_s
    status: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        answer = cmdr.command(new, "handover_status")
        status = answer.get("new") if answer["status"] == "accepted" else None
        if status is None:
            return None, "no status from the new instance"
        if status["mode"] not in ("active", "probation") or status["state"] == "FAULT":
            return status, status.get("reason") or f"mode {status['mode']}, {status['state']}"
        problem = watch() if watch is not None else None
        if problem is not None:
            return status, problem
        time.sleep(0.1)
    return status, None


def _rollback(cmdr: MqttCommander, old: str, report: dict[str, Any], why: str) -> dict[str, Any]:
    resumed = cmdr.command(old, "handover_resume", reason=f"rollback: {why}")
    report["outcome"] = "rolled-back" if resumed["status"] == "accepted" else "failed"
    report["reason"] = why
    report["resume"] = resumed.get("new") or resumed.get("reason")
    raise HandoverFailedError(why, report)


def plant_gap(
    cmdr: MqttCommander, old_epoch: int | None, new_epoch: int, period_s: float
) -> dict[str, Any]:
    """Gap between the last applied write of ``old_epoch`` and the first of ``new_epoch``."""
    stats = cmdr.stats_after(time.monotonic())
    if stats is None:
        return {"plant_gap_s": None}
    epochs = stats.get("epochs", {})
    a, b = epochs.get(str(old_epoch)), epochs.get(str(new_epoch))
    if not a or not b:
        return {"plant_gap_s": None, "epoch_runs": stats.get("epoch_runs")}
    gap_s = b["first"] - a["last"]
    return {
        "plant_gap_s": round(gap_s, 4),
        "plant_gap_cycles": round(gap_s / period_s, 2),
        "epoch_runs": stats.get("epoch_runs"),
        "writes": stats.get("writes"),
    }

"""ALARM blocks as AlarmConditionType events: ConditionRefresh, the standard Acknowledge
(EventId, Comment) on the one command path, the event after it, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.ua.uaerrors import UaStatusCodeError

from tests.conftest import memory_manifest, write_app
from tests.opcua.conftest import Run, start_run, stop_run, ua_client

Cert = tuple[Path, Path]
LOGIC = """
from runtime import Program
from runtime.blocks import ALARM

class Main(Program):
    def __init__(self, app):
        super().__init__(app)
        self.x = app.point("X")
        self.hi = ALARM(IN=self.x, TEXT="X too high", H=1.0, H_EN=True, LATCH=True)

    def execute(self, ctx):
        self.hi(ctx)
"""
ACK = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)


@pytest.fixture(scope="module")
def alarmed(tmp_path_factory: pytest.TempPathFactory, client_cert: Cert) -> Iterator[Run]:
    """An app whose one ALARM is active (X = 5 > H = 1) and unacknowledged from the start."""
    folder = tmp_path_factory.mktemp("conditions")
    manifest = memory_manifest(name="alarmapp")
    manifest["drivers"]["mem"]["options"]["initial"] = {"x": 5.0}
    app = write_app(folder / "app", manifest, LOGIC)
    run = start_run(folder / "run", trust=(client_cert[0],), app=app)
    yield run
    stop_run(run)


class _Events:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def event_notification(self, event: Any) -> None:
        self.events.append(event)


async def _wait(pred: Any, timeout: float) -> None:
    for _ in range(int(timeout / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)


def test_alarm_condition_events_and_the_standard_acknowledge(
    alarmed: Run, client_cert: Cert
) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with ua_client(alarmed, client_cert, "olga") as client:
            idx = await client.get_namespace_index("urn:vplc:alarmapp")
            cond = client.get_node(ua.NodeId("Alarms.main.hi", idx))
            handler = _Events()
            sub = await client.create_subscription(50, handler)
            await sub.subscribe_alarms_and_conditions(
                client.nodes.server, ua.ObjectIds.AlarmConditionType
            )
            await client.get_node(ua.ObjectIds.ConditionType).call_method(
                ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh),
                ua.Variant(sub.subscription_id, ua.VariantType.UInt32),
            )
            await _wait(lambda: any(getattr(e, "ConditionName", "") == "main.hi"
                                    for e in handler.events), 10)  # fmt: skip
            first = [e for e in handler.events if getattr(e, "ConditionName", "") == "main.hi"]
            out["first"] = first[-1]
            try:
                await cond.call_method(ACK, ua.Variant(b"not-the-event", ua.VariantType.ByteString),
                                       ua.LocalizedText("wrong id"))  # fmt: skip
                out["wrong"] = ua.StatusCodes.Good
            except UaStatusCodeError as exc:
                out["wrong"] = exc.code
            event_id = first[-1].EventId
            async with ua_client(alarmed, client_cert, "vera") as viewer:
                try:
                    await viewer.get_node(cond.nodeid).call_method(
                        ACK, ua.Variant(event_id, ua.VariantType.ByteString),
                        ua.LocalizedText("viewer"),
                    )  # fmt: skip
                    out["viewer"] = ua.StatusCodes.Good
                except UaStatusCodeError as exc:
                    out["viewer"] = exc.code
            handler.events.clear()
            await cond.call_method(ACK, ua.Variant(event_id, ua.VariantType.ByteString),
                                   ua.LocalizedText("seen, on it"))  # fmt: skip
            await _wait(lambda: bool(handler.events), 10)
            out["after"] = handler.events[-1] if handler.events else None
            out["acked_var"] = await client.get_node(
                ua.NodeId("Alarms.main.hi.Acked", idx)
            ).read_value()
            await sub.delete()
        return out

    out = asyncio.run(go())
    first = out["first"]
    assert getattr(first, "ActiveState/Id") is True and getattr(first, "AckedState/Id") is False
    assert first.Retain is True and first.Severity == 500
    assert first.Message.Text == "X too high" and first.SourceName == "main.hi"
    assert out["wrong"] == ua.StatusCodes.BadEventIdUnknown
    assert out["viewer"] == ua.StatusCodes.BadUserAccessDenied
    after = out["after"]
    assert after is not None and getattr(after, "AckedState/Id") is True
    assert getattr(after, "ActiveState/Id") is True and after.Retain is True  # still active
    assert after.EventId != first.EventId
    assert out["acked_var"] is True
    records = [r for r in alarmed.audit() if r.get("cmd") == "ack_alarm"]
    assert [(r["user"], r["status"]) for r in records] == [
        ("vera", "refused"),
        ("olga", "accepted"),
    ]
    assert records[-1]["target"] == "main.hi"

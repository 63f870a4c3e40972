"""Subscription limits of the OPC UA server: one too many is refused with the right StatusCode,
intervals and queues below/above the limits are revised, and the session and scan go on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, ua
from asyncua.common.subscription import Subscription
from asyncua.ua.uaerrors import UaStatusCodeError

from tests.opcua.conftest import Run, node, ns, start_run, stop_run, ua_client

Cert = tuple[Path, Path]
LIMITS = {
    "max_subscriptions_per_session": 2,
    "max_monitored_items_per_session": 4,
    "min_publishing_interval_ms": 200,
    "max_queue_size": 3,
    "sample_ms": 50,
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, client_cert: Cert) -> Iterator[Run]:
    run = start_run(tmp_path_factory.mktemp("opcua-limits"), extra=LIMITS, trust=(client_cert[0],))
    yield run
    log = stop_run(run)
    assert run.proc.returncode == 0, log


class _Values:
    """Data changes received, by NodeId string."""

    def __init__(self) -> None:
        self.values: dict[str, list[Any]] = {}

    def datachange_notification(self, n: Any, val: Any, data: Any) -> None:
        self.values.setdefault(str(n.nodeid.Identifier), []).append(val)


async def _cycles(client: Client) -> int:
    return int(await node(client, await ns(client), "Tasks.control.Cycles").read_value())


async def _cycles_after(client: Client, before: int, timeout_s: float = 10) -> int:
    """The cycle count once it has moved past ``before`` (task statistics: every stats_s)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    now = await _cycles(client)
    while now <= before and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        now = await _cycles(client)
    return now


def test_one_subscription_too_many_is_refused_and_the_session_goes_on(
    limited: Run, client_cert: Cert
) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with (
            ua_client(limited, client_cert) as client,
            ua_client(limited, client_cert, "erik") as other,
        ):
            before = await _cycles(client)
            first = await client.create_subscription(500, _Values())
            await client.create_subscription(500, _Values())
            try:
                await client.create_subscription(500, _Values())
            except UaStatusCodeError as exc:
                out["third"] = exc.code
            # The limit is per session: another session has its own two.
            out["other"] = [
                (await other.create_subscription(500, _Values())).subscription_id for _ in range(2)
            ]
            # The refused session still reads, and a deleted subscription frees its place.
            out["state"] = await node(client, await ns(client), "State").read_value()
            await first.delete()
            out["again"] = (await client.create_subscription(500, _Values())).subscription_id
            out["cycles"] = (before, await _cycles_after(client, before))
        return out

    out = asyncio.run(go())
    assert out["third"] == ua.StatusCodes.BadTooManySubscriptions
    assert len(out["other"]) == 2 and all(out["other"])
    assert out["state"] == "RUN"
    assert out["again"] > 0
    before, after = out["cycles"]
    assert after > before  # the scan kept scanning


def test_one_monitored_item_too_many_is_refused_alone(limited: Run, client_cert: Cert) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with ua_client(limited, client_cert) as client:
            idx = await ns(client)
            values = _Values()
            sub = await client.create_subscription(200, values)
            names = ["Points.TT101", "Points.AT201", "State"]
            out["first"] = await sub.subscribe_data_change([node(client, idx, n) for n in names])
            # An unknown node is refused for what it is and takes no place: the next item is
            # the session's fourth and created, the one after it is one too many.
            mixed = ["Points.NOPE", "Tasks.control.Cycles", "Points.AT301"]
            out["mixed"] = await sub.subscribe_data_change([node(client, idx, n) for n in mixed])
            # The limit holds for the session, across its subscriptions.
            second = await client.create_subscription(200, _Values())
            try:
                await second.subscribe_data_change(node(client, idx, "Points.AT301"))
            except UaStatusCodeError as exc:
                out["second"] = exc.code
            # Unsubscribing one frees its place.
            await sub.unsubscribe(out["first"][0])
            out["freed"] = await second.subscribe_data_change(node(client, idx, "Points.AT301"))
            await asyncio.sleep(2.5)  # the created items keep reporting (stats: every stats_s)
            out["cycles"] = list(values.values.get("Tasks.control.Cycles", []))
        return out

    out = asyncio.run(go())
    assert all(isinstance(h, int) for h in out["first"]), out["first"]
    unknown, created, refused = out["mixed"]
    assert unknown == ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)
    assert isinstance(created, int)
    assert refused == ua.StatusCode(ua.StatusCodes.BadTooManyMonitoredItems)
    assert out["second"] == ua.StatusCodes.BadTooManyMonitoredItems
    assert isinstance(out["freed"], int)
    cycles = out["cycles"]
    assert len(cycles) >= 2 and cycles == sorted(cycles) and cycles[-1] > cycles[0]


def _request(idx: int, path: str, handle: int, sampling: float, queue: int) -> Any:
    return ua.MonitoredItemCreateRequest(
        ItemToMonitor=ua.ReadValueId(
            NodeId=ua.NodeId(path, idx), AttributeId=ua.AttributeIds.Value
        ),
        MonitoringMode=ua.MonitoringMode.Reporting,
        RequestedParameters=ua.MonitoringParameters(
            ClientHandle=handle, SamplingInterval=sampling, QueueSize=queue
        ),
    )


def test_intervals_and_queues_are_revised_not_refused(limited: Run, client_cert: Cert) -> None:
    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with ua_client(limited, client_cert) as client:
            idx = await ns(client)
            params = ua.CreateSubscriptionParameters(
                RequestedPublishingInterval=10,
                RequestedLifetimeCount=1000,
                RequestedMaxKeepAliveCount=10,
                PublishingEnabled=True,
            )
            sub = Subscription(client.uaclient.session, params, _Values())
            created = await sub.init()
            out["publishing"] = created.RevisedPublishingInterval
            requests = [
                _request(idx, "Points.TT101", 1, 1.0, 1000),  # too fast, too deep
                _request(idx, "Points.AT201", 2, 1000.0, 2),  # within the limits: as asked
                _request(idx, "State", 3, -1, 0),  # -1: the publishing interval
            ]
            results = await client.uaclient.create_monitored_items(
                ua.CreateMonitoredItemsParameters(
                    SubscriptionId=created.SubscriptionId,
                    ItemsToCreate=requests,
                    TimestampsToReturn=ua.TimestampsToReturn.Both,
                )
            )
            out["items"] = [
                (r.StatusCode.is_good(), r.RevisedSamplingInterval, r.RevisedQueueSize)
                for r in results
            ]
            modified = await client.uaclient.modify_monitored_items(
                ua.ModifyMonitoredItemsParameters(
                    SubscriptionId=created.SubscriptionId,
                    TimestampsToReturn=ua.TimestampsToReturn.Both,
                    ItemsToModify=[
                        ua.MonitoredItemModifyRequest(
                            MonitoredItemId=results[1].MonitoredItemId,
                            RequestedParameters=ua.MonitoringParameters(
                                ClientHandle=2, SamplingInterval=0, QueueSize=50_000
                            ),
                        )
                    ],
                )
            )
            out["modified"] = (modified[0].RevisedSamplingInterval, modified[0].RevisedQueueSize)
            await client.uaclient.delete_subscriptions([created.SubscriptionId])
        return out

    out = asyncio.run(go())
    assert out["publishing"] == 200  # 10 ms asked, the minimum granted
    # Sampling no faster than the server's own sample_ms; queues no deeper than max_queue_size.
    assert out["items"] == [(True, 50, 3), (True, 1000, 2), (True, 200, 3)]
    assert out["modified"] == (50, 3)


def test_the_limits_are_in_server_capabilities(limited: Run, client_cert: Cert) -> None:
    names = [
        "MaxSubscriptionsPerSession",
        "MaxMonitoredItemsPerSubscription",
        "MaxMonitoredItemsQueueSize",
        "MinSupportedSampleRate",
        "MaxSessions",
    ]
    ids = {n: getattr(ua.ObjectIds, f"Server_ServerCapabilities_{n}") for n in names}

    async def go() -> dict[str, Any]:
        async with ua_client(limited, client_cert) as client:
            return {k: await client.get_node(ua.NodeId(i)).read_value() for k, i in ids.items()}

    assert asyncio.run(go()) == {
        "MaxSubscriptionsPerSession": 2,
        "MaxMonitoredItemsPerSubscription": 4,
        "MaxMonitoredItemsQueueSize": 3,
        "MinSupportedSampleRate": 50,
        "MaxSessions": 50,
    }

"""Subscription limits per OPC UA session: too many refused, intervals and queues revised."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.server.internal_session import InternalSession

from runtime.opcua._config import OpcuaConfig

__all__ = ["MAX_PUBLISHING_INTERVAL_MS", "LimitedSession", "SessionLimits", "publish_capabilities"]

# A publishing interval beyond an hour is revised down: asyncua sleeps that long between
# publish cycles, and a client asking for 1e300 ms would otherwise break the loop's timer.
MAX_PUBLISHING_INTERVAL_MS = 3_600_000.0


@dataclass(frozen=True)
class SessionLimits:
    """What one session may hold; the server-wide caps are asyncua's own (set from these)."""

    subscriptions: int
    monitored_items: int
    min_publishing_ms: float
    min_sampling_ms: float
    queue_size: int

    @classmethod
    def from_config(cls, cfg: OpcuaConfig) -> SessionLimits:
        # The server's values change once every sample_ms: a faster sampling would be a lie.
        return cls(
            subscriptions=cfg.max_subscriptions_per_session,
            monitored_items=cfg.max_monitored_items_per_session,
            min_publishing_ms=cfg.min_publishing_interval_ms,
            min_sampling_ms=cfg.sample_ms,
            queue_size=cfg.max_queue_size,
        )

    def publishing(self, requested: float) -> float:
        """The revised publishing interval: at least the minimum (0, negative, NaN: the minimum)."""
        if not requested >= self.min_publishing_ms:  # NaN compares false: the minimum too
            return self.min_publishing_ms
        return min(requested, MAX_PUBLISHING_INTERVAL_MS)

    def sampling(self, requested: float, publishing_ms: float) -> float:
        """The revised sampling interval; negative asks for the publishing interval (Part 4)."""
        wanted = publishing_ms if requested < 0 or not math.isfinite(requested) else requested
        return min(max(wanted, self.min_sampling_ms), MAX_PUBLISHING_INTERVAL_MS)


class LimitedSession(InternalSession):
    """An asyncua session holding at most ``limits`` subscriptions and monitored items.

    asyncua caps subscriptions only server-wide and not monitored items at all; a session
    here answers BadTooManySubscriptions for the subscription one past its limit and
    BadTooManyMonitoredItems for each item past its limit (the others in the same call are
    still created). Intervals below the minimum are revised up, never refused.
    """

    vplc_limits: SessionLimits | None = None

    def _mine(self) -> list[Any]:
        subs = self.subscription_service.subscriptions.values()
        return [s for s in subs if s.session_id == self.session_id]

    def _monitored(self) -> int:
        return sum(len(s.monitored_item_srv._monitored_items) for s in self._mine())

    async def create_subscription(
        self,
        params: ua.CreateSubscriptionParameters,
        callback: Callable[..., Any],
        request_callback: Callable[..., Any] | None = None,
    ) -> ua.CreateSubscriptionResult:
        limits = self.vplc_limits
        if limits is not None:
            if len(self._mine()) >= limits.subscriptions:
                raise ServiceError(ua.StatusCodes.BadTooManySubscriptions)
            params.RequestedPublishingInterval = limits.publishing(
                params.RequestedPublishingInterval
            )
        return await super().create_subscription(params, callback, request_callback)

    async def create_monitored_items(
        self, params: ua.CreateMonitoredItemsParameters
    ) -> list[ua.MonitoredItemCreateResult]:
        limits = self.vplc_limits
        sub = self.subscription_service.subscriptions.get(params.SubscriptionId)
        if limits is None or sub is None:  # an unknown subscription: asyncua answers for it
            return await super().create_monitored_items(params)
        items = list(params.ItemsToCreate)
        results: list[ua.MonitoredItemCreateResult | None] = [None] * len(items)
        pending = list(range(len(items)))
        # In batches that fit: an item refused for another reason (an unknown node) frees
        # its place for the next one, as if the call had been made item by item.
        while pending and (room := limits.monitored_items - self._monitored()) > 0:
            batch, pending = pending[:room], pending[room:]
            for item in (items[i] for i in batch):
                _revise_request(item.RequestedParameters, limits, sub)
            part = ua.CreateMonitoredItemsParameters(
                SubscriptionId=params.SubscriptionId,
                TimestampsToReturn=params.TimestampsToReturn,
                ItemsToCreate=[items[i] for i in batch],
            )
            for i, result in zip(batch, await super().create_monitored_items(part), strict=True):
                results[i] = result
        for i in pending:
            results[i] = ua.MonitoredItemCreateResult(
                StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadTooManyMonitoredItems))
            )
        return [_revised(r, items[i], limits, sub) for i, r in enumerate(results) if r is not None]

    async def modify_monitored_items(
        self, params: ua.ModifyMonitoredItemsParameters
    ) -> list[ua.MonitoredItemModifyResult]:
        limits = self.vplc_limits
        sub = self.subscription_service.subscriptions.get(params.SubscriptionId)
        if limits is not None and sub is not None:  # asyncua takes a modified queue size as is
            for item in params.ItemsToModify:
                _revise_request(item.RequestedParameters, limits, sub)
        return await super().modify_monitored_items(params)


def _revise_request(req: ua.MonitoringParameters, limits: SessionLimits, sub: Any) -> None:
    """Revise a request in place: asyncua then keeps (and answers) the revised values."""
    req.SamplingInterval = limits.sampling(req.SamplingInterval, sub.data.RevisedPublishingInterval)
    if req.QueueSize > limits.queue_size:
        req.QueueSize = limits.queue_size


def _revised(
    result: ua.MonitoredItemCreateResult,
    item: ua.MonitoredItemCreateRequest,
    limits: SessionLimits,
    sub: Any,
) -> ua.MonitoredItemCreateResult:
    """asyncua answers the subscription's publishing interval as the sampling interval (kept
    for event items, which are not sampled)."""
    events = item.ItemToMonitor.AttributeId == ua.AttributeIds.EventNotifier
    if result.StatusCode.is_good() and not events:
        result.RevisedSamplingInterval = limits.sampling(
            item.RequestedParameters.SamplingInterval, sub.data.RevisedPublishingInterval
        )
    return result


async def publish_capabilities(server: Server, cfg: OpcuaConfig) -> None:
    """The limits in Server.ServerCapabilities, where a client looks for them (Part 5 6.3.2)."""
    per_session = cfg.max_monitored_items_per_session
    values: dict[int, tuple[Any, ua.VariantType]] = {
        ua.ObjectIds.Server_ServerCapabilities_MinSupportedSampleRate: (
            cfg.sample_ms,
            ua.VariantType.Double,
        ),
        ua.ObjectIds.Server_ServerCapabilities_MaxSessions: (
            cfg.max_sessions,
            ua.VariantType.UInt32,
        ),
        ua.ObjectIds.Server_ServerCapabilities_MaxSubscriptionsPerSession: (
            cfg.max_subscriptions_per_session,
            ua.VariantType.UInt32,
        ),
        ua.ObjectIds.Server_ServerCapabilities_MaxSubscriptions: (
            cfg.max_sessions * cfg.max_subscriptions_per_session,
            ua.VariantType.UInt32,
        ),
        # A subscription can hold no more than its session may.
        ua.ObjectIds.Server_ServerCapabilities_MaxMonitoredItemsPerSubscription: (
            per_session,
            ua.VariantType.UInt32,
        ),
        ua.ObjectIds.Server_ServerCapabilities_MaxMonitoredItemsQueueSize: (
            cfg.max_queue_size,
            ua.VariantType.UInt32,
        ),
    }
    for ident, (value, vtype) in values.items():
        node = server.get_node(ua.NodeId(ua.Int32(ident)))
        await node.write_value(ua.DataValue(ua.Variant(value, vtype)))

"""Delivering queued events: claim under a lease, hand to the delivery adapter, ack.

Every replica runs one dispatcher. A failed attempt is due again after an
exponential backoff (``backoff_seconds`` doubling per attempt, capped at
``backoff_max_seconds``); after ``max_attempts`` the item is dead-lettered and
waits for an operator (``xinyi-gateway outbox list|retry``). The backoff is
kept in the store with the item rather than in an in-process retry loop, so a
restart or another replica continues where the last attempt left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from adapters.delivery.base import DeliveryAdapter, DeliveryContext, DeliveryError
from gateway.metrics import Metrics
from gateway.outbox.models import OutboxItem
from gateway.outbox.store import OutboxStore
from gateway.plugins import load_delivery_class
from gateway.settings import OutboxSettings, Partner, Settings
from gateway.store.base import StoreUnavailable

__all__ = ["Dispatcher", "build_adapters"]

log = logging.getLogger("xinyi.outbox")


def build_adapters(
    partners: Sequence[Partner], settings: Settings
) -> dict[tuple[str, str], DeliveryAdapter]:
    """Every configured delivery's adapter, by (partner, delivery name).

    A delivery that cannot be built stops the start with ValueError naming the
    partner and the delivery (never the secret).
    """
    adapters: dict[tuple[str, str], DeliveryAdapter] = {}
    for partner in partners:
        for delivery in partner.deliveries:
            context = DeliveryContext(
                partner=partner.id,
                name=delivery.key,
                config_dir=settings.partners_file.parent,
                state_dir=settings.state_dir,
            )
            try:
                cls = load_delivery_class(delivery.adapter)
                adapters[(partner.id, delivery.key)] = cls.from_options(delivery.options, context)
            except ValueError as exc:
                raise ValueError(
                    f"partner {partner.id!r}, delivery {delivery.key!r}: {exc}"
                ) from None
    return adapters


class Dispatcher:
    def __init__(
        self,
        store: OutboxStore,
        adapters: dict[tuple[str, str], DeliveryAdapter],
        settings: OutboxSettings,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._adapters = adapters
        self._settings = settings
        self._metrics = metrics
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def store(self) -> OutboxStore:
        """The outbox store, for read-only views (the dashboard's outbox panel)."""
        return self._store

    def backoff(self, attempts: int) -> float:
        s = self._settings
        return float(min(s.backoff_max_seconds, s.backoff_seconds * 2 ** max(0, attempts - 1)))

    async def run_once(self) -> int:
        """Claim one batch of due items and attempt each; how many were claimed."""
        items = await self._store.claim(self._settings.lease_seconds, self._settings.batch)
        if items:
            delivered = await asyncio.gather(*(self._attempt(item) for item in items))
            # One write acknowledges the batch: one fsync on the embedded store, not one each.
            await self._store.ack([i.item_id for i, ok in zip(items, delivered, strict=True) if ok])
        return len(items)

    async def run(self) -> None:
        """Until cancelled: deliver what is due, else wait for a wake-up or the next poll."""
        await self._store.release_own_claims()
        while True:
            self._wakeup.clear()
            try:
                claimed = await self.run_once()
            except StoreUnavailable as exc:
                log.warning("outbox store unavailable", extra={"error": str(exc)})
                claimed = 0
            if claimed >= self._settings.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._settings.poll_seconds)

    async def _attempt(self, item: OutboxItem) -> bool:
        """Deliver once; True when acknowledged (the caller acks), else recorded as failed."""
        adapter = self._adapters.get((item.partner, item.delivery))
        attempts = item.attempts + 1
        failed = OutboxItem(item.item_id, item.delivery, item.event, attempts)
        if adapter is None:
            # The partner's configuration no longer names this delivery: keep the
            # event for an operator rather than drop it.
            await self._store.fail(failed, 0, "no such delivery is configured", dead=True)
            self._metrics.outbox_deliveries.labels(item.partner, "dead").inc()
            return False
        try:
            await adapter.deliver(item.event)
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # a third-party adapter's bug must not stop delivery
            log.exception("delivery adapter failed", extra={"partner": item.partner})
            error = f"adapter error: {type(exc).__name__}"
        else:
            self._metrics.outbox_deliveries.labels(item.partner, "delivered").inc()
            return True
        dead = attempts >= self._settings.max_attempts
        await self._store.fail(failed, self.backoff(attempts), error, dead=dead)
        self._metrics.outbox_deliveries.labels(item.partner, "dead" if dead else "retry").inc()
        log.warning(
            "event delivery failed",
            extra={
                "partner": item.partner,
                "delivery": item.delivery,
                "event": item.event.event_id,
                "type": item.event.type,
                "attempts": attempts,
                "dead": dead,
                "error": error,
            },
        )
        return False

    async def close(self) -> None:
        for adapter in self._adapters.values():
            await adapter.close()

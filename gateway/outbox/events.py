"""Emitting events: from (kind, data, audience) to outbox items, one per receiving delivery.

The emitter knows every partner's deliveries (``Partner.deliveries``), so a
change that emits an event can put the items in its own transaction (see
``items``); ``emit`` queues them on their own for changes that have no
transaction of their own to join (e.g. ``loan_response_overdue``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from adapters.delivery.base import OutboundEvent
from gateway.ids import ordered_id
from gateway.outbox.models import OutboxItem
from gateway.outbox.store import OutboxStore
from gateway.settings import EventKind, Partner

__all__ = ["Events"]


class Events:
    def __init__(
        self,
        partners: Sequence[Partner],
        store: OutboxStore,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._partners = {p.id: p for p in partners}
        self._upstream = [p.id for p in partners if p.kind == "platform"]
        self.store = store
        self._wake = wake

    def set_wake(self, wake: Callable[[], None]) -> None:
        """Let the local dispatcher start on new items at once instead of at its next poll."""
        self._wake = wake

    def items(
        self,
        kind: EventKind,
        data: Mapping[str, Any],
        *,
        audience: Iterable[str] = (),
        upstream: bool = False,
        at: dt.datetime | None = None,
    ) -> list[OutboxItem]:
        """The outbox items for one event: for each receiving partner (``audience``,
        plus every platform partner when ``upstream``) each delivery that takes
        ``kind``. One event id for all of them, so a receiver de-duplicates by it."""
        event_id = ordered_id("evt_")
        stamp = (at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        receivers = dict.fromkeys([*audience, *(self._upstream if upstream else ())])
        out: list[OutboxItem] = []
        for partner_id in receivers:
            partner = self._partners.get(partner_id)
            if partner is None:
                continue
            for delivery in partner.deliveries:
                if kind in delivery.events:
                    event = OutboundEvent(event_id, kind, stamp, partner_id, dict(data))
                    out.append(OutboxItem.make(event, delivery.key))
        return out

    async def emit(
        self,
        kind: EventKind,
        data: Mapping[str, Any],
        *,
        audience: Iterable[str] = (),
        upstream: bool = False,
    ) -> int:
        """Queue an event durably for its receivers; how many items were queued."""
        items = self.items(kind, data, audience=audience, upstream=upstream)
        await self.queue(items)
        return len(items)

    async def queue(self, items: list[OutboxItem]) -> None:
        if items:
            await self.store.add(items)
            self._wake()

    def queued(self, items: list[OutboxItem]) -> None:
        """Items a caller's own transaction just queued: deliver them soon."""
        if items:
            self._wake()

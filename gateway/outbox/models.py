"""What the outbox keeps: one item per (event, receiving delivery)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from adapters.delivery.base import OutboundEvent

__all__ = ["ItemState", "OutboxItem"]

ItemState = Literal["pending", "dead"]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An event on its way to one delivery of one partner.

    The item id joins event, partner and delivery, so one event fanned out to
    two receivers is two items, retried apart; both carry the same event id.
    """

    item_id: str
    delivery: str  # the delivery's name in the partner's configuration
    event: OutboundEvent
    attempts: int = 0
    last_error: str | None = None
    state: ItemState = "pending"
    next_at: float = 0.0  # epoch seconds: when it is (or was) due; informational

    @property
    def partner(self) -> str:
        return self.event.partner

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "item_id": self.item_id,
                "delivery": self.delivery,
                "event": self.event.as_dict(),
                "attempts": self.attempts,
                "last_error": self.last_error,
                "state": self.state,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes, next_at: float = 0.0) -> OutboxItem:
        d: dict[str, Any] = orjson.loads(raw)
        return cls(
            item_id=d["item_id"],
            delivery=d["delivery"],
            event=OutboundEvent.from_dict(d["event"]),
            attempts=int(d.get("attempts", 0)),
            last_error=d.get("last_error"),
            state=d.get("state", "pending"),
            next_at=next_at,
        )

    @staticmethod
    def make(event: OutboundEvent, delivery: str) -> OutboxItem:
        return OutboxItem(f"{event.event_id}.{event.partner}.{delivery}", delivery, event)

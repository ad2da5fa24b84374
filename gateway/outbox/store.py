"""The outbox store contract; one implementation per backend.

Items are added by the change that causes them (a commitment's breach writes
its events in the same transaction or script) or on their own (``add``).
Dispatchers ``claim`` due items under a lease: a claimed item is not due again
until the lease passes, so with many replicas each item goes to one of them;
one that died mid-delivery leaves its items to be claimed again once the lease
passes (at least once). ``ack`` removes an item, ``fail`` schedules it again
or dead-letters it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from gateway.outbox.models import ItemState, OutboxItem

__all__ = ["OutboxStore"]


class OutboxStore(ABC):
    @abstractmethod
    async def open(self) -> None:
        """Create what the backend needs (idempotent)."""

    async def release_own_claims(self) -> None:  # noqa: B027 - only the embedded store has any
        """At start: release claims a process that died left behind, where this
        process is the only one (embedded); shared backends let the lease pass."""

    @abstractmethod
    async def add(self, items: list[OutboxItem]) -> None:
        """Durably queue items, due now; an item id already queued is kept as it is."""

    @abstractmethod
    async def claim(self, lease_s: float, limit: int) -> list[OutboxItem]:
        """Up to ``limit`` due items, oldest due first, each leased for ``lease_s``."""

    @abstractmethod
    async def ack(self, item_ids: list[str]) -> None:
        """The receivers acknowledged: these items are done (one write for all)."""

    @abstractmethod
    async def fail(self, item: OutboxItem, delay_s: float, error: str, dead: bool) -> None:
        """Record a failed attempt (``item.attempts`` already counts it): due again
        after ``delay_s``, or dead-lettered when ``dead``."""

    @abstractmethod
    async def items(self, state: ItemState, limit: int) -> list[OutboxItem]:
        """Pending (by due time) or dead-lettered items, for operators."""

    @abstractmethod
    async def retry(self, item_id: str | None) -> int:
        """Move one dead item (or all, for None) back to pending, due now, attempts
        reset; how many moved."""

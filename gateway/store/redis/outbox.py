"""The outbox on Redis: a ZSET of due times, a HASH of items, a ZSET of dead ones.

Layout (``P`` the key prefix), all in the ``{P:ev}`` slot with the commitments
whose changes emit events (functions in ``events.lua``):

    {P:ev}:due    ZSET item id -> due time (ms, Redis clock); a claim moves it
                  to now + lease
    {P:ev}:items  HASH item id -> item JSON
    {P:ev}:dead   ZSET item id -> when it was dead-lettered

Redis's clock decides what is due, so replicas with skewed clocks agree.
"""

from __future__ import annotations

from gateway.outbox.models import ItemState, OutboxItem
from gateway.outbox.store import OutboxStore
from gateway.store.redis.breaches import events_tag
from gateway.store.redis.core import RedisStore

__all__ = ["RedisOutbox", "event_tag"]


def event_tag(store: RedisStore) -> str:
    """The hash tag the outbox and commitments share."""
    return events_tag(store.prefix)


class RedisOutbox(OutboxStore):
    def __init__(self, store: RedisStore) -> None:
        self._store = store
        tag = event_tag(store)
        self.k_due = f"{tag}:due"
        self.k_items = f"{tag}:items"
        self.k_dead = f"{tag}:dead"

    async def open(self) -> None:
        """Nothing to create: the functions load with the store."""

    async def add(self, items: list[OutboxItem]) -> None:
        if not items:
            return
        args: list[bytes | str | int] = [len(items)]
        for item in items:
            args += [item.item_id, item.to_json()]
        await self._store.fcall("xinyi_ob_add", [self.k_due, self.k_items], args)

    async def claim(self, lease_s: float, limit: int) -> list[OutboxItem]:
        flat = await self._store.fcall(
            "xinyi_ob_claim", [self.k_due, self.k_items], [int(lease_s * 1000), limit]
        )
        return [
            OutboxItem.from_json(flat[i + 1], float(flat[i + 2]) / 1000)
            for i in range(0, len(flat), 3)
        ]

    async def ack(self, item_ids: list[str]) -> None:
        if item_ids:
            await self._store.fcall(
                "xinyi_ob_ack", [self.k_due, self.k_items, self.k_dead], item_ids
            )

    async def fail(self, item: OutboxItem, delay_s: float, error: str, dead: bool) -> None:
        body = OutboxItem(
            item.item_id,
            item.delivery,
            item.event,
            item.attempts,
            error,
            "dead" if dead else "pending",
        ).to_json()
        await self._store.fcall(
            "xinyi_ob_fail",
            [self.k_due, self.k_items, self.k_dead],
            [item.item_id, body, int(delay_s * 1000), 1 if dead else 0],
        )

    async def items(self, state: ItemState, limit: int) -> list[OutboxItem]:
        key = self.k_due if state == "pending" else self.k_dead
        raw = await self._store.run("ZRANGE", key, 0, limit - 1, "WITHSCORES")
        # Pairs, or a flat member/score list, depending on the client's parsing.
        flat = (
            [x for pair in raw for x in pair] if raw and isinstance(raw[0], list | tuple) else raw
        )
        pairs = [(flat[i].decode(), float(flat[i + 1])) for i in range(0, len(flat), 2)]
        if not pairs:
            return []
        bodies = await self._store.run("HMGET", self.k_items, *[p[0] for p in pairs])
        return [
            OutboxItem.from_json(body, score / 1000)
            for (_, score), body in zip(pairs, bodies, strict=True)
            if body
        ]

    async def retry(self, item_id: str | None) -> int:
        if item_id is None:
            ids = [raw.decode() for raw in await self._store.run("ZRANGE", self.k_dead, 0, -1)]
        else:
            ids = [item_id]
        moved = 0
        for ident in ids:
            raw = await self._store.run("HGET", self.k_items, ident)
            if not raw:
                continue
            item = OutboxItem.from_json(raw)
            fresh = OutboxItem(item.item_id, item.delivery, item.event).to_json()
            moved += int(
                await self._store.fcall(
                    "xinyi_ob_requeue", [self.k_due, self.k_items, self.k_dead], [ident, fresh]
                )
            )
        return moved

"""Commitments on Redis, in the outbox's slot so a closing and its events are one call.

Layout (``{P:ev}`` the shared hash tag; index members are ``due|id``, all at
score 0, so a lexicographic range orders them by due date and serves as cursor):

    {P:ev}:cm:<id>                commitment JSON
    {P:ev}:cmopen                 open commitments (the sweeper's work list)
    {P:ev}:cmp:<partner>:all      a hall's commitments
    {P:ev}:cmp:<partner>:<status> a hall's commitments by status
    {P:ev}:cmn:<partner>          HASH kind:status -> count (statistics)
    {P:ev}:cb:<subject key>       ZSET breached commitment id -> last withheld day (ordinal)
"""

from __future__ import annotations

import datetime as dt

from gateway.commitments.models import Commitment, CommitmentStatus
from gateway.commitments.store import CommitmentStore
from gateway.outbox.models import OutboxItem
from gateway.store.redis.breaches import body_keys, first_withheld, index_key, withholding
from gateway.store.redis.core import RedisStore
from gateway.store.redis.outbox import RedisOutbox, event_tag

__all__ = ["RedisCommitments"]


class RedisCommitments(CommitmentStore):
    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._outbox = RedisOutbox(store)
        self._tag = event_tag(store)
        self._k_open = f"{self._tag}:cmopen"

    def _k(self, kind: str, ident: str) -> str:
        return f"{self._tag}:{kind}:{ident}"

    async def open(self) -> None:
        """Nothing to create: the functions load with the store."""

    async def register(self, commitment: Commitment) -> bool:
        c = commitment
        done = await self._store.fcall(
            "xinyi_cm_put",
            [
                self._k("cm", c.commitment_id),
                self._k_open,
                self._k("cmp", f"{c.partner}:all"),
                self._k("cmp", f"{c.partner}:{c.status}"),
                self._k("cmn", c.partner),
            ],
            [c.to_json(), c.member, c.kind],
        )
        return bool(done)

    async def get(self, commitment_id: str) -> Commitment | None:
        raw = await self._store.run("GET", self._k("cm", commitment_id))
        return Commitment.from_json(raw) if raw else None

    async def close(self, closed: Commitment, events: list[OutboxItem]) -> bool:
        c = closed
        score = c.withhold_until.toordinal() if c.withhold_until else ""
        args: list[bytes | str | int] = [c.to_json(), c.member, c.commitment_id, score, len(events)]
        for item in events:
            args += [item.item_id, item.to_json()]
        args += [c.kind, c.status]
        done = await self._store.fcall(
            "xinyi_cm_close",
            [
                self._k("cm", c.commitment_id),
                self._k_open,
                self._k("cmp", f"{c.partner}:open"),
                self._k("cmp", f"{c.partner}:{c.status}"),
                index_key(self._store.prefix, c.subject_key),
                self._outbox.k_due,
                self._outbox.k_items,
                self._k("cmn", c.partner),
            ],
            args,
        )
        return bool(done)

    async def _load(self, members: list[bytes]) -> list[Commitment]:
        if not members:
            return []
        ids = [m.decode().split("|", 1)[1] for m in members]
        raws = await self._store.run("MGET", *[self._k("cm", i) for i in ids])
        return [Commitment.from_json(raw) for raw in raws if raw]

    async def list_for(
        self,
        partner: str,
        status: CommitmentStatus | None,
        due_before: dt.date | None,
        after: str | None,
        limit: int,
    ) -> list[Commitment]:
        key = self._k("cmp", f"{partner}:{status or 'all'}")
        low = f"({after}" if after else "-"
        high = f"({due_before.isoformat()}" if due_before else "+"
        members = await self._store.run("ZRANGE", key, low, high, "BYLEX", "LIMIT", 0, limit)
        return await self._load(members)

    async def overdue(self, today: dt.date, limit: int) -> list[Commitment]:
        members = await self._store.run(
            "ZRANGE", self._k_open, "-", f"({today.isoformat()}", "BYLEX", "LIMIT", 0, limit
        )
        return await self._load(members)

    async def breaches(self, subject_key: str, today: dt.date) -> list[Commitment]:
        # By the rules a decision's admission reads them with (gateway/store/redis/breaches.py).
        prefix = self._store.prefix
        ids = await self._store.run(
            "ZRANGEBYSCORE", index_key(prefix, subject_key), first_withheld(today), "+inf"
        )
        if not ids:
            return []
        return withholding(await self._store.run("MGET", *body_keys(prefix, ids)))

    async def counts(self, partner: str) -> dict[str, int]:
        flat = await self._store.run("HGETALL", self._k("cmn", partner))
        if isinstance(flat, dict):
            return {k.decode(): int(v) for k, v in flat.items()}
        return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}

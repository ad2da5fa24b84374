"""The outbox on the embedded store: one SQLite table beside the state it reports on.

A change that emits events puts ``insert_statements`` in its own transaction
(``EmbeddedStore.write``), so the event is on disk exactly when the change is.
One process owns the state directory, so on start every claim left by a
process that died is released at once (``release_own_claims``).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from gateway.outbox.models import ItemState, OutboxItem
from gateway.outbox.store import OutboxStore
from gateway.store.embedded.core import EmbeddedStore

__all__ = ["SCHEMA", "EmbeddedOutbox", "insert_statements"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    item_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    next_at REAL NOT NULL,
    claimed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
"""


def insert_statements(items: list[OutboxItem]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements that queue ``items``, for a caller's own transaction."""
    now = time.time()
    return [
        (
            "INSERT OR IGNORE INTO outbox VALUES (?, ?, 'pending', ?, 0)",
            (item.item_id, item.to_json().decode(), now),
        )
        for item in items
    ]


class EmbeddedOutbox(OutboxStore):
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    async def open(self) -> None:
        await self._store.ensure_schema(SCHEMA)

    async def release_own_claims(self) -> None:
        now = time.time()
        await self._store.write(
            [("UPDATE outbox SET claimed = 0, next_at = ? WHERE claimed = 1", (now,))]
        )

    async def add(self, items: list[OutboxItem]) -> None:
        if items:
            await self._store.write(insert_statements(items))

    async def claim(self, lease_s: float, limit: int) -> list[OutboxItem]:
        def claim(conn: sqlite3.Connection) -> list[OutboxItem]:
            now = time.time()
            rows = conn.execute(
                "SELECT item_id, body, next_at FROM outbox WHERE state = 'pending'"
                " AND next_at <= ? ORDER BY next_at LIMIT ?",
                (now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE outbox SET next_at = ?, claimed = 1 WHERE item_id = ?",
                [(now + lease_s, row[0]) for row in rows],
            )
            return [OutboxItem.from_json(body, next_at) for _, body, next_at in rows]

        claimed: list[OutboxItem] = await self._store.in_writer(claim)
        return claimed

    async def ack(self, item_ids: list[str]) -> None:
        if item_ids:
            await self._store.write(
                [("DELETE FROM outbox WHERE item_id = ?", (item_id,)) for item_id in item_ids]
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
        await self._store.write(
            [
                (
                    "UPDATE outbox SET body = ?, state = ?, next_at = ?, claimed = 0"
                    " WHERE item_id = ?",
                    (
                        body.decode(),
                        "dead" if dead else "pending",
                        time.time() + delay_s,
                        item.item_id,
                    ),
                )
            ]
        )

    async def items(self, state: ItemState, limit: int) -> list[OutboxItem]:
        rows = self._store.reader.execute(
            "SELECT body, next_at FROM outbox WHERE state = ? ORDER BY next_at LIMIT ?",
            (state, limit),
        ).fetchall()
        return [OutboxItem.from_json(body, next_at) for body, next_at in rows]

    async def retry(self, item_id: str | None) -> int:
        def retry(conn: sqlite3.Connection) -> int:
            where, params = (
                ("state = 'dead'", ())
                if item_id is None
                else (
                    "state = 'dead' AND item_id = ?",
                    (item_id,),
                )
            )
            rows = conn.execute(
                f"SELECT body FROM outbox WHERE {where}",  # noqa: S608 - fixed clauses
                params,
            ).fetchall()
            now = time.time()
            for (body,) in rows:
                item = OutboxItem.from_json(body)
                fresh = OutboxItem(item.item_id, item.delivery, item.event)
                conn.execute(
                    "UPDATE outbox SET body = ?, state = 'pending', next_at = ?, claimed = 0"
                    " WHERE item_id = ?",
                    (fresh.to_json().decode(), now, item.item_id),
                )
            return len(rows)

        moved: int = await self._store.in_writer(retry)
        return moved

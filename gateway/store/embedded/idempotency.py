"""Idempotency records on the embedded store.

A decision's record is written with the decision in its batch (core.py); other
responses (consents, revocations …) are put here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gateway.store.base import IdempotencyRecord

if TYPE_CHECKING:
    from gateway.store.embedded.core import EmbeddedStore

__all__ = ["SCHEMA", "EmbeddedIdempotency"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class EmbeddedIdempotency:
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    async def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        row = self._store.reader.execute(
            "SELECT record FROM idempotency WHERE key = ? AND expires > ?", (key, time.time())
        ).fetchone()
        return IdempotencyRecord.from_json(row[0]) if row else None

    async def put_idempotency(self, key: str, record: IdempotencyRecord, ttl_s: int) -> None:
        await self._store.write(
            [
                ("DELETE FROM idempotency WHERE expires < ?", (time.time(),)),
                (
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?)",
                    (key, record.to_json(), time.time() + ttl_s),
                ),
            ],
        )

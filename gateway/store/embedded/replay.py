"""OAuth's replay cache on the embedded store: a key is claimed once until it expires."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.store.embedded.core import EmbeddedStore

__all__ = ["SCHEMA", "EmbeddedReplay"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS replay (
    key TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
"""


class EmbeddedReplay:
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    async def claim_once(self, key: str, ttl_s: float) -> bool:
        # Durable, so a replayed client assertion stays refused across a restart.
        now = time.time()

        def claim(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM replay WHERE expires < ?", (now,))
            cur = conn.execute("INSERT OR IGNORE INTO replay VALUES (?, ?)", (key, now + ttl_s))
            return cur.rowcount == 1

        claimed: bool = await self._store.in_writer(claim)
        return claimed

    async def release(self, key: str) -> None:
        await self._store.write([("DELETE FROM replay WHERE key = ?", (key,))])

"""Staff sessions in the embedded store's SQLite file (one process: no one else to tell)."""

from __future__ import annotations

import time

from gateway.store.embedded.core import EmbeddedStore
from gateway.ui.sessions import Session, SessionStore

__all__ = ["EmbeddedSessions"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ui_sessions (
    digest TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


class EmbeddedSessions(SessionStore):
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    async def open(self) -> None:
        await self._store.ensure_schema(_SCHEMA)

    async def put(self, digest: str, session: Session, ttl_s: float) -> None:
        now = time.time()
        await self._store.write(
            [
                # Expired rows go with every sign-in or refresh: the table stays small.
                ("DELETE FROM ui_sessions WHERE expires < ?", (now,)),
                (
                    "INSERT OR REPLACE INTO ui_sessions VALUES (?, ?, ?)",
                    (digest, session.to_json().decode(), now + ttl_s),
                ),
            ]
        )

    async def get(self, digest: str) -> Session | None:
        row = self._store.reader.execute(
            "SELECT body FROM ui_sessions WHERE digest = ? AND expires > ?", (digest, time.time())
        ).fetchone()
        return Session.from_json(row[0]) if row else None

    async def delete(self, digest: str) -> None:
        await self._store.write([("DELETE FROM ui_sessions WHERE digest = ?", (digest,))])

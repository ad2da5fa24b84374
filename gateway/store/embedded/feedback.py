"""Partners' feedback on decisions, on the embedded store: a capped number per decision."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from gateway.store.embedded.core import EmbeddedStore

__all__ = ["SCHEMA", "EmbeddedFeedback"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL,
    partner TEXT NOT NULL,
    applied INTEGER NOT NULL,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_decision ON feedback (decision_id);
"""


class EmbeddedFeedback:
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    async def add_feedback(
        self,
        decision_id: str,
        partner: str,
        applied: bool,
        detail: dict[str, Any],
        at: str,
        limit: int,
    ) -> bool:
        row = (decision_id, partner, int(applied), orjson.dumps(detail).decode(), at)

        def add(conn: sqlite3.Connection) -> bool:
            # Counted and inserted in one write transaction: the limit holds under races.
            (count,) = conn.execute(
                "SELECT count(*) FROM feedback WHERE decision_id = ?", (decision_id,)
            ).fetchone()
            if count >= limit:
                return False
            conn.execute(
                "INSERT INTO feedback (decision_id, partner, applied, detail, at)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )
            return True

        added: bool = await self._store.in_writer(add)
        return added

"""Restorations in the embedded store's SQLite file, through the store's single writer."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.restorations.store import ConstraintLink, Restoration, RestorationStore
from gateway.store.embedded.core import EmbeddedStore

__all__ = ["EmbeddedRestorations"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS restoration_links (
    subject_key TEXT NOT NULL,
    record_id TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    link TEXT NOT NULL,
    PRIMARY KEY (subject_key, record_id, decision_id)
);
CREATE TABLE IF NOT EXISTS restorations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    link TEXT NOT NULL,
    record_id TEXT NOT NULL,
    event TEXT NOT NULL,
    restored_at TEXT NOT NULL
);
"""


class EmbeddedRestorations(RestorationStore):
    """Two tables beside the embedded store's own, written by its writer thread."""

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    async def open(self) -> None:
        await self._store.ensure_schema(_SCHEMA)

    async def close(self) -> None:
        return None  # the embedded store owns the connections

    async def link(self, subject_key: str, record_ids: Sequence[str], link: ConstraintLink) -> None:
        rows = [
            (subject_key, record_id, link.decision_id, link.to_json().decode())
            for record_id in record_ids
        ]
        if rows:
            await self._store.in_writer(_link, rows)

    async def restore(
        self, subject_key: str, record_id: str, event: str, at: str
    ) -> list[Restoration]:
        result: list[Restoration] = await self._store.in_writer(
            _restore, subject_key, record_id, event, at
        )
        return result

    async def restorations(self, after: str | None, limit: int) -> list[Restoration]:
        if after is not None and not (after.isdigit() and len(after) <= 18):
            raise ValueError("not a cursor this store handed out")
        start = int(after) if after is not None else 0
        rows = self._store.reader.execute(
            "SELECT seq, link, record_id, event, restored_at FROM restorations"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (start, limit),
        ).fetchall()
        return [
            Restoration(str(seq), ConstraintLink.from_json(raw), rid, ev, at)
            for seq, raw, rid, ev, at in rows
        ]


def _link(conn: sqlite3.Connection, rows: list[tuple[str, str, str, str]]) -> None:
    conn.executemany("INSERT OR IGNORE INTO restoration_links VALUES (?, ?, ?, ?)", rows)


def _restore(
    conn: sqlite3.Connection, subject_key: str, record_id: str, event: str, at: str
) -> list[Restoration]:
    links = conn.execute(
        "SELECT link FROM restoration_links WHERE subject_key = ? AND record_id = ?"
        " ORDER BY decision_id",
        (subject_key, record_id),
    ).fetchall()
    conn.execute(
        "DELETE FROM restoration_links WHERE subject_key = ? AND record_id = ?",
        (subject_key, record_id),
    )
    out = []
    for (raw,) in links:
        cur = conn.execute(
            "INSERT INTO restorations (link, record_id, event, restored_at) VALUES (?, ?, ?, ?)",
            (raw, record_id, event, at),
        )
        out.append(
            Restoration(str(cur.lastrowid), ConstraintLink.from_json(raw), record_id, event, at)
        )
    return out

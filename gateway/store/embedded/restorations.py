"""Restorations in the embedded store's SQLite file (one process)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gateway.restorations.store import ConstraintLink, Restoration, RestorationStore
from gateway.store.base import StoreUnavailable

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
    """Two tables beside the embedded store's own; writes on one thread, each a transaction."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xinyi-restore")
        await self._call(self._connect)

    def _connect(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # The embedded store writes the same file from its own thread: wait for its lock.
        conn = sqlite3.connect(
            self._path, check_same_thread=False, isolation_level=None, timeout=10
        )
        conn.executescript(_SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        if self._thread is None:
            return
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        self._thread.shutdown(wait=True)
        self._thread = None

    async def _call(self, fn: Any, *args: Any) -> Any:
        if self._thread is None:
            raise StoreUnavailable("the restorations store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"restorations database failed: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable("the restorations store is not open")
        return self._conn

    async def link(self, subject_key: str, record_ids: Sequence[str], link: ConstraintLink) -> None:
        rows = [
            (subject_key, record_id, link.decision_id, link.to_json().decode())
            for record_id in record_ids
        ]
        if rows:
            await self._call(self._link, rows)

    def _link(self, rows: list[tuple[str, str, str, str]]) -> None:
        db = self._db()
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR IGNORE INTO restoration_links VALUES (?, ?, ?, ?)", rows)

    async def restore(
        self, subject_key: str, record_id: str, event: str, at: str
    ) -> list[Restoration]:
        result: list[Restoration] = await self._call(
            self._restore, subject_key, record_id, event, at
        )
        return result

    def _restore(self, subject_key: str, record_id: str, event: str, at: str) -> list[Restoration]:
        db = self._db()
        out = []
        with db:
            db.execute("BEGIN IMMEDIATE")
            links = db.execute(
                "SELECT link FROM restoration_links WHERE subject_key = ? AND record_id = ?"
                " ORDER BY decision_id",
                (subject_key, record_id),
            ).fetchall()
            db.execute(
                "DELETE FROM restoration_links WHERE subject_key = ? AND record_id = ?",
                (subject_key, record_id),
            )
            for (raw,) in links:
                cur = db.execute(
                    "INSERT INTO restorations (link, record_id, event, restored_at)"
                    " VALUES (?, ?, ?, ?)",
                    (raw, record_id, event, at),
                )
                seq = cur.lastrowid
                out.append(
                    Restoration(str(seq), ConstraintLink.from_json(raw), record_id, event, at)
                )
        return out

    async def restorations(self, after: str | None, limit: int) -> list[Restoration]:
        if after is not None and not (after.isdigit() and len(after) <= 18):
            raise ValueError("not a cursor this store handed out")
        start = int(after) if after is not None else 0
        rows = await self._call(self._read, start, limit)
        return [
            Restoration(str(seq), ConstraintLink.from_json(raw), record_id, event, at)
            for seq, raw, record_id, event, at in rows
        ]

    def _read(self, start: int, limit: int) -> list[tuple[int, str, str, str, str]]:
        rows: list[tuple[int, str, str, str, str]] = (
            self._db()
            .execute(
                "SELECT seq, link, record_id, event, restored_at FROM restorations"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (start, limit),
            )
            .fetchall()
        )
        return rows

"""The audit tree beside the embedded store's log (gateway.audit.store).

The tree grows inside each decision batch's transaction (a ``BatchHook``): the
records' chain hashes are at hand, so a record costs one leaf hash (of 32
bytes), about one node hash, and no second read of the log. Subjects are not
indexed: a subject's view (rare) scans the hot records in a thread. A
decision's seq is a column of its row. The background builder
(``AuditLog.sync``) only catches up a tree that lags (a state file from before
the tree, or a batch whose hook found the tree behind).
"""

from __future__ import annotations

import asyncio
import sqlite3

from gateway.audit.merkle import KEPT_LEVEL, Frontier, record_leaf
from gateway.audit.store import AuditTreeStore, TreeExtension
from gateway.store.base import AuditRecord, DecisionWrite
from gateway.store.embedded.core import EmbeddedStore

__all__ = ["EmbeddedAuditTree"]

# One process per state directory: the builder's lease is one of the store's
# in-memory leases, shared by every AuditLog on the store.
_LEASE = "audit-tree-builder"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_tree (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    frontier BLOB NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
"""


class EmbeddedAuditTree(AuditTreeStore):
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store

    async def open(self) -> None:
        await self._store.ensure_schema(_SCHEMA)
        self._store.add_batch_hook(_grow_with_batch)

    async def tree_state(self) -> Frontier:
        row = self._store.reader.execute("SELECT size, frontier FROM audit_tree").fetchone()
        return Frontier.unpack(int(row[0]), bytes(row[1])) if row else Frontier()

    async def extend_tree(self, step: TreeExtension) -> bool:
        def apply(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT size FROM audit_tree").fetchone()
            if (int(row[0]) if row else 0) != step.old_size:
                return False
            conn.execute(
                "INSERT INTO audit_tree (id, size, frontier) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE"
                " SET size = excluded.size, frontier = excluded.frontier",
                (step.frontier.size, step.frontier.pack()),
            )
            conn.executemany("INSERT OR REPLACE INTO audit_nodes VALUES (?, ?, ?)", step.nodes)
            conn.executemany(
                "UPDATE decisions SET seq = ? WHERE decision_id = ?",
                [(seq, decision_id) for decision_id, seq in step.decisions],
            )
            return True

        done: bool = await self._store.in_writer(apply)
        return done

    async def take_builder_lease(self, holder: str, ttl_ms: int) -> bool:
        return self._store.leases.take(_LEASE, holder, ttl_ms / 1000)

    async def release_builder_lease(self, holder: str) -> None:
        self._store.leases.release(_LEASE, holder)

    async def node(self, level: int, index: int) -> bytes | None:
        row = self._store.reader.execute(
            "SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        return bytes(row[0]) if row else None

    async def put_checkpoint(self, size: int, note: str) -> bool:
        def put(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO audit_checkpoints VALUES (?, ?)", (size, note)
            )
            return cur.rowcount == 1

        done: bool = await self._store.in_writer(put)
        return done

    async def checkpoint(self, size: int) -> str | None:
        row = self._store.reader.execute(
            "SELECT note FROM audit_checkpoints WHERE size = ?", (size,)
        ).fetchone()
        return str(row[0]) if row else None

    async def latest_checkpoint(self) -> tuple[int, str] | None:
        row = self._store.reader.execute(
            "SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    async def checkpoints(self, after_size: int, limit: int) -> list[tuple[int, str]]:
        rows = self._store.reader.execute(
            "SELECT size, note FROM audit_checkpoints WHERE size > ? ORDER BY size LIMIT ?",
            (after_size, limit),
        ).fetchall()
        return [(int(s), str(n)) for s, n in rows]

    async def scan(self, cursor: int, limit: int) -> tuple[list[AuditRecord], int]:
        # The sequence number is the table's key: stored order is seq order.
        page = await self._store.audit_records(cursor, limit)
        return page, page[-1].seq if page else cursor

    async def archived_size(self) -> int:
        row = self._store.reader.execute("SELECT archived FROM audit_tree").fetchone()
        return int(row[0]) if row else 0

    async def drop_archived(self, upto: int, records: list[AuditRecord]) -> None:
        decisions = [(r.entry["decision_id"],) for r in records if "kind" not in r.entry]

        def drop(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM audit WHERE seq <= ?", (upto,))
            conn.executemany("DELETE FROM decisions WHERE decision_id = ?", decisions)
            conn.execute(
                "DELETE FROM audit_nodes WHERE level < ? AND ((idx + 1) << level) <= ?",
                (KEPT_LEVEL, upto),
            )
            conn.execute("DELETE FROM audit_checkpoints WHERE size < ?", (upto,))
            conn.execute("UPDATE audit_tree SET archived = ?", (upto,))

        await self._store.in_writer(drop)

    async def purge_expired(self, now: float, token_grace_s: float, feedback_before: str) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            gone = 0
            for sql, arg in (
                ("DELETE FROM idempotency WHERE expires < ?", now),
                ("DELETE FROM replay WHERE expires < ?", now),
                ("DELETE FROM tokens WHERE expires < ?", now - token_grace_s),
                ("DELETE FROM feedback WHERE at < ?", feedback_before),
            ):
                gone += conn.execute(sql, (arg,)).rowcount
            return gone

        done: int = await self._store.in_writer(purge)
        return done

    async def decision_seq(self, decision_id: str) -> int | None:
        row = self._store.reader.execute(
            "SELECT seq FROM decisions WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    async def subject_seqs(self, subjects: set[str]) -> list[int]:
        path = self._store.reader.execute("PRAGMA database_list").fetchone()[2]
        names = sorted(subjects)

        def scan() -> list[int]:
            # Its own read-only connection, off the event loop: a full scan of hot records.
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                marks = ", ".join("?" * len(names))
                rows = conn.execute(
                    "SELECT seq FROM audit WHERE json_extract(entry, '$.subject')"  # noqa: S608
                    f" IN ({marks}) ORDER BY seq",
                    names,
                ).fetchall()
            finally:
                conn.close()
            return [int(s) for (s,) in rows]

        return await asyncio.to_thread(scan)


def _grow_with_batch(
    conn: sqlite3.Connection, first: int, hashes: list[str], writes: list[DecisionWrite]
) -> None:
    """Extend the tree by a batch's records, in the batch's transaction."""
    row = conn.execute("SELECT size, frontier FROM audit_tree").fetchone()
    size = int(row[0]) if row else 0
    if size != first - 1:
        return  # the tree lags: the background builder brings it up to here first
    frontier = Frontier.unpack(size, bytes(row[1])) if row else Frontier()
    nodes: list[tuple[int, int, bytes]] = []
    for digest in hashes:
        frontier.append(record_leaf(digest), nodes)
    conn.execute(
        "INSERT INTO audit_tree (id, size, frontier) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET size = excluded.size, frontier = excluded.frontier",
        (frontier.size, frontier.pack()),
    )
    if nodes:
        conn.executemany("INSERT OR REPLACE INTO audit_nodes VALUES (?, ?, ?)", nodes)

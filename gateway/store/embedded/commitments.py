"""Commitments on the embedded store: one table, closed with their events in one transaction."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from gateway.commitments.models import Commitment, CommitmentStatus
from gateway.commitments.store import CommitmentStore
from gateway.outbox.models import OutboxItem
from gateway.store.embedded.core import EmbeddedStore
from gateway.store.embedded.outbox import SCHEMA as OUTBOX_SCHEMA
from gateway.store.embedded.outbox import insert_statements

__all__ = ["EmbeddedCommitments"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS commitments (
    commitment_id TEXT PRIMARY KEY,
    partner TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    member TEXT NOT NULL,
    due TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    withhold_until TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commitments_by_partner ON commitments (partner, member);
CREATE INDEX IF NOT EXISTS commitments_open ON commitments (status, due);
CREATE INDEX IF NOT EXISTS commitments_by_subject ON commitments (subject_key, status);
"""

_UPDATE = (
    "UPDATE commitments SET status = ?, withhold_until = ?, body = ?"
    " WHERE commitment_id = ? AND status = 'open'"
)


class EmbeddedCommitments(CommitmentStore):
    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        # Each subject with a breached commitment, and the last day any of them
        # withholds. Every decision in a scene that reads breaches asks; almost
        # every subject has none, and this answers them without a query. This
        # process owns the file (one writer), so its own closes keep it whole.
        self._withholding: dict[str, dt.date] = {}

    async def open(self) -> None:
        await self._store.ensure_schema(OUTBOX_SCHEMA + SCHEMA)
        rows = self._store.reader.execute(
            "SELECT subject_key, max(withhold_until) FROM commitments"
            " WHERE status = 'breached' AND withhold_until IS NOT NULL GROUP BY subject_key"
        ).fetchall()
        self._withholding = {key: dt.date.fromisoformat(until) for key, until in rows}

    async def register(self, commitment: Commitment) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO commitments VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    commitment.commitment_id,
                    commitment.partner,
                    commitment.kind,
                    commitment.status,
                    commitment.member,
                    commitment.due.isoformat(),
                    commitment.subject_key,
                    commitment.to_json().decode(),
                ),
            )
            return cur.rowcount == 1

        done: bool = await self._store.in_writer(insert)
        return done

    async def get(self, commitment_id: str) -> Commitment | None:
        row = self._store.reader.execute(
            "SELECT body FROM commitments WHERE commitment_id = ?", (commitment_id,)
        ).fetchone()
        return Commitment.from_json(row[0]) if row else None

    async def close(self, closed: Commitment, events: list[OutboxItem]) -> bool:
        until = closed.withhold_until.isoformat() if closed.withhold_until else None
        outbox = insert_statements(events)

        def close(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                _UPDATE, (closed.status, until, closed.to_json().decode(), closed.commitment_id)
            )
            if cur.rowcount != 1:
                return False
            for sql, params in outbox:
                conn.execute(sql, params)
            return True

        done: bool = await self._store.in_writer(close)
        if done and closed.status == "breached" and closed.withhold_until is not None:
            known = self._withholding.get(closed.subject_key)
            if known is None or known < closed.withhold_until:
                self._withholding[closed.subject_key] = closed.withhold_until
        return done

    async def list_for(
        self,
        partner: str,
        status: CommitmentStatus | None,
        due_before: dt.date | None,
        after: str | None,
        limit: int,
    ) -> list[Commitment]:
        where = ["partner = ?", "member > ?"]
        params: list[Any] = [partner, after or ""]
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if due_before is not None:
            where.append("due < ?")
            params.append(due_before.isoformat())
        rows = self._store.reader.execute(
            f"SELECT body FROM commitments WHERE {' AND '.join(where)}"  # noqa: S608 - fixed
            " ORDER BY member LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [Commitment.from_json(body) for (body,) in rows]

    async def overdue(self, today: dt.date, limit: int) -> list[Commitment]:
        rows = self._store.reader.execute(
            "SELECT body FROM commitments WHERE status = 'open' AND due < ? ORDER BY due LIMIT ?",
            (today.isoformat(), limit),
        ).fetchall()
        return [Commitment.from_json(body) for (body,) in rows]

    async def breaches(self, subject_key: str, today: dt.date) -> list[Commitment]:
        until = self._withholding.get(subject_key)
        if until is None or until < today:
            return []
        rows = self._store.reader.execute(
            "SELECT body FROM commitments WHERE subject_key = ? AND status = 'breached'"
            " AND withhold_until >= ?",
            (subject_key, today.isoformat()),
        ).fetchall()
        return [Commitment.from_json(body) for (body,) in rows]

    async def counts(self, partner: str) -> dict[str, int]:
        rows = self._store.reader.execute(
            "SELECT kind, status, COUNT(*) FROM commitments WHERE partner = ?"
            " GROUP BY kind, status",
            (partner,),
        ).fetchall()
        return {f"{kind}:{status}": int(n) for kind, status, n in rows}

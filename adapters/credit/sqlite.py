"""The embedded credit source: a SQLite file of credit records.

Lookups run on the event loop on purpose: the file is local, the query hits
one index, and a read costs tens of microseconds — less than handing it to a
thread would. A source behind a network goes through its own async adapter.

The lookups of one event-loop pass share one read transaction, ended by a
callback at the start of the next pass. Each transaction of its own cost eight
system calls (lock and unlock, the hot-journal and WAL checks, the change
counter) on top of the one or two page reads a lookup needs; with a million
subjects nearly every decision misses the record cache and pays them. Nothing
can change between the lookups of one pass that this process could know of:
what another process wrote reached us, if at all, through the poll that began
the pass, and that writer could not commit while our shared lock was held,
so it committed before the transaction began; this process's own writes
(``apply_event``) end the transaction first. That reasoning needs the rollback
journal the import and ``write_dataset`` leave the file in: a dataset switched
to WAL (where a reader holds no lock a writer waits for) is read one
transaction per lookup, as before. A bulk read (``records_many``) ends the
transaction when it returns: its caller's work on what it read may fill the pass.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from adapters.credit.base import (
    AdapterContext,
    CreditEvent,
    CreditRecord,
    CreditSource,
    CreditSourceError,
    RecordStatus,
    SubjectKind,
    UnknownRecord,
)

__all__ = [
    "SQLiteCreditSource",
    "dataset_path",
    "ensure_schema",
    "read_dataset",
    "upsert_records",
    "write_dataset",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('person', 'enterprise')),
    subject_id TEXT NOT NULL,
    type TEXT NOT NULL,
    domain TEXT NOT NULL,
    effective_document INTEGER NOT NULL,
    adverse INTEGER NOT NULL,
    decided_on TEXT NOT NULL,
    publication_until TEXT,
    status TEXT NOT NULL,
    value TEXT,
    title TEXT
);
CREATE INDEX IF NOT EXISTS records_by_subject ON records (subject_kind, subject_id);
-- `xinyi-gateway data import` progress per export file (gateway/data_import.py)
CREATE TABLE IF NOT EXISTS import_checkpoints (
    digest TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    format TEXT NOT NULL,
    line INTEGER NOT NULL,
    imported INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
"""

_COLUMNS = (
    "record_id, type, domain, effective_document, adverse, decided_on,"
    " publication_until, status, value, title"
)
_ALL = (
    "SELECT subject_kind, subject_id, record_id, type, domain, effective_document, adverse,"
    " decided_on, publication_until, status, value, title FROM records ORDER BY rowid"
)
_SELECT = f"SELECT {_COLUMNS} FROM records WHERE subject_kind = ? AND subject_id = ?"  # noqa: S608 - constant


# A dict lookup instead of the enum's call: row parsing is on every record-cache miss.
_STATUS = {s.value: s for s in RecordStatus}


def _record(row: Sequence[Any]) -> CreditRecord:
    # Positional, in CreditRecord's field order: ~2 µs less per record than keywords
    # and the enum call (bench/scale.py: with a large dataset most lookups miss).
    return CreditRecord(
        row[0],
        row[1],
        row[2],
        bool(row[3]),
        bool(row[4]),
        dt.date.fromisoformat(row[5]),
        dt.date.fromisoformat(row[6]) if row[6] else None,
        _STATUS[row[7]],
        orjson.loads(row[8]) if row[8] is not None else None,
        row[9],
    )


def _parsed(rows: Sequence[Sequence[Any]]) -> list[CreditRecord]:
    # A dataset edited by hand or damaged on disk can hold a row no record can be
    # made of: the source is then broken (503), not the request (500).
    try:
        return [_record(row) for row in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise CreditSourceError(
            f"credit dataset holds a malformed row ({type(exc).__name__})"
        ) from exc


_UPSERT = "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_EVENT_STATUS = {
    CreditEvent.DELISTED: RecordStatus.EXPIRED,
    CreditEvent.REPAIRED: RecordStatus.REPAIRED,
    CreditEvent.OBJECTION_OPENED: RecordStatus.UNDER_OBJECTION,
    CreditEvent.OBJECTION_CLOSED: RecordStatus.ACTIVE,
}


def _row(kind: SubjectKind, subject_id: str, r: CreditRecord) -> tuple[Any, ...]:
    return (
        r.record_id,
        kind,
        subject_id,
        r.type,
        r.domain,
        int(r.effective_document),
        int(r.adverse),
        r.decided_on.isoformat(),
        r.publication_until.isoformat() if r.publication_until else None,
        r.status.value,
        orjson.dumps(r.value).decode() if r.value is not None else None,
        r.title,
    )


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


def upsert_records(
    conn: sqlite3.Connection, rows: Iterable[tuple[SubjectKind, str, CreditRecord]]
) -> None:
    """Insert or replace records by ``record_id``, inside the caller's transaction."""
    conn.executemany(_UPSERT, [_row(kind, subject_id, r) for kind, subject_id, r in rows])


def dataset_path(options: Mapping[str, Any], state_dir: Path) -> Path:
    """Where ``credit_source.options`` puts the dataset (relative paths: under state_dir)."""
    raw = options.get("path", "credit.sqlite3")
    if not isinstance(raw, str):
        raise CreditSourceError("credit_source.options.path must be a string")
    path = Path(raw)
    return path if path.is_absolute() else state_dir / path


def read_dataset(path: Path) -> list[tuple[SubjectKind, str, CreditRecord]]:
    """Every record in the dataset at ``path``, with its subject (for exports and the demo)."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(_ALL).fetchall()
    finally:
        conn.close()
    return [(row[0], row[1], _record(row[2:])) for row in rows]


def write_dataset(path: Path, rows: Iterable[tuple[SubjectKind, str, CreditRecord]]) -> int:
    """Replace the dataset at ``path`` with ``rows``; returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executescript(_SCHEMA)
            conn.execute("DELETE FROM records")
            conn.execute("DELETE FROM import_checkpoints")  # they describe the old content
            data = [_row(kind, subject_id, r) for kind, subject_id, r in rows]
            conn.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", data
            )
        return len(data)
    finally:
        conn.close()


class SQLiteCreditSource(CreditSource):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        # One cursor for every read (each completes before the next): execute() on
        # the connection makes a new one per call.
        self._cursor: sqlite3.Cursor | None = None
        # The loop whose current pass has a read transaction open, if any.
        self._reading: asyncio.AbstractEventLoop | None = None
        self._shared_reads = True  # False on a WAL dataset (see the module's doc)
        # The thread that opened the connection: its loop's lookups share the read
        # transaction and the cursor. Another thread's (the connection allows them)
        # read with a cursor of their own, in autocommit, and leave both alone.
        self._home: int | None = None
        self._opening = threading.Lock()  # one connection, whichever thread reads first

    @classmethod
    def from_options(cls, options: Mapping[str, Any], context: AdapterContext) -> CreditSource:
        return cls(dataset_path(options, context.state_dir))

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is not None:
            return conn
        with self._opening:
            return self._connection_opened()

    def _connection_opened(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self._path.is_file():
                raise CreditSourceError(f"credit dataset {self._path} does not exist")
            # as_uri() percent-encodes the path: a raw '#', '?' or '%' would cut or bend it.
            uri = f"{self._path.absolute().as_uri()}?mode=ro"
            try:
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
                try:
                    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                except sqlite3.Error:
                    conn.close()
                    raise
            except sqlite3.Error as exc:
                raise CreditSourceError(f"cannot open credit dataset: {exc}") from exc
            self._shared_reads = mode != "wal"
            self._home = threading.get_ident()
            self._conn = conn
            self._cursor = conn.cursor()
        return self._conn

    def _reader(self) -> sqlite3.Cursor:
        """The reading cursor, in this loop pass's read transaction (see the module's doc)."""
        conn = self._connection()
        if threading.get_ident() != self._home:
            return conn.cursor()
        loop = asyncio.get_running_loop()
        if self._reading is not loop and self._shared_reads:
            # Another loop's transaction (its end callback lost with that loop) ends first.
            self._end_read()
            conn.execute("BEGIN")  # deferred: the shared lock comes with the first read
            self._reading = loop
            loop.call_soon(self._end_read)
        assert self._cursor is not None  # made with the connection
        return self._cursor

    def _end_read(self) -> None:
        # Only on the home thread: elsewhere its loop may be reading in it right now.
        if self._reading is not None and threading.get_ident() == self._home:
            self._reading = None
            if self._conn is not None:
                try:
                    self._conn.execute("COMMIT")  # reads only: releases the shared lock
                except sqlite3.Error:
                    self._conn.close()  # cannot end it: a fresh connection on the next read
                    self._conn = self._cursor = None

    async def records(self, kind: SubjectKind, subject_id: str) -> Sequence[CreditRecord]:
        try:
            rows = self._reader().execute(_SELECT, (kind, subject_id)).fetchall()
        except sqlite3.Error as exc:
            self._end_read()
            raise CreditSourceError(f"credit dataset query failed: {exc}") from exc
        return _parsed(rows)

    async def records_many(
        self, kind: SubjectKind, subject_ids: Sequence[str]
    ) -> dict[str, Sequence[CreditRecord]]:
        # One indexed query per 500 subjects instead of one per subject.
        found: dict[str, list[CreditRecord]] = {sid: [] for sid in subject_ids}
        ids = list(found)
        try:
            cursor = self._reader()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = cursor.execute(
                    f"SELECT subject_id, {_COLUMNS} FROM records"  # noqa: S608 - placeholders only
                    f" WHERE subject_kind = ? AND subject_id IN ({marks})",
                    (kind, *chunk),
                ).fetchall()
                for sid, record in zip(
                    (row[0] for row in rows), _parsed([row[1:] for row in rows]), strict=True
                ):
                    found[sid].append(record)
        except sqlite3.Error as exc:
            self._end_read()
            raise CreditSourceError(f"credit dataset query failed: {exc}") from exc
        # Not kept to the next pass: a bulk read's caller goes on, in this pass, to
        # work through everything it read (a ranking builds facts for every open
        # demand), and another process's writer would wait all that time.
        self._end_read()
        return dict(found)

    async def check(self) -> None:
        try:
            self._reader().execute("SELECT 1 FROM records LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            self._end_read()
            raise CreditSourceError(f"credit dataset is not readable: {exc}") from exc

    async def apply_event(
        self,
        kind: SubjectKind,
        subject_id: str,
        event: CreditEvent,
        record: CreditRecord | None,
        record_id: str,
    ) -> None:
        # The embedded dataset is the platform's copy here, so events change it.
        # Our own read transaction would hold the writer off (and, on this thread,
        # wait out its busy timeout): ended first, so the next lookup sees the change.
        self._end_read()
        try:
            conn = sqlite3.connect(self._path)
            try:
                with conn:
                    if event in (CreditEvent.LISTED, CreditEvent.RECORD_ADDED):
                        if record is None:
                            raise CreditSourceError(f"a {event} event needs the record")
                        conn.execute(
                            _UPSERT,
                            _row(kind, subject_id, record),
                        )
                    else:
                        status = _EVENT_STATUS[event]
                        if event is CreditEvent.OBJECTION_CLOSED and record is not None:
                            status = record.status  # the objection's outcome
                        cur = conn.execute(
                            "UPDATE records SET status = ? WHERE record_id = ?"
                            " AND subject_kind = ? AND subject_id = ?",
                            (status.value, record_id, kind, subject_id),
                        )
                        if cur.rowcount == 0:
                            raise UnknownRecord(
                                "the event names a record the dataset does not hold"
                            )
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise CreditSourceError(f"credit dataset update failed: {exc}") from exc

    async def close(self) -> None:
        self._reading = None
        if self._conn is not None:
            self._conn.close()
            self._conn = self._cursor = None

"""The embedded backend: hot state in memory, everything durable in SQLite.

One process owns the file. Writes go through a single writer thread with its
own connection (WAL, ``synchronous=FULL``), so the event loop never waits on
fsync; decisions are group-committed (``GroupCommit``) so one fsync covers all
decisions that arrived meanwhile. Reads use a second connection on the loop:
indexed lookups in WAL mode do not wait for the writer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gateway.audit.chain import GENESIS, link
from gateway.ids import random_below
from gateway.store.base import (
    IDEMPOTENCY_TTL_S,
    AccessToken,
    AuditRecord,
    Consent,
    DecisionWrite,
    IdempotencyRecord,
    IssuedToken,
    StatusRef,
    Store,
    StoreUnavailable,
    consent_from_json,
    consent_to_json,
)
from gateway.store.batching import GroupCommit
from gateway.store.embedded.lock import StateLock, lock_state_dir

__all__ = ["STATUS_LIST_SIZE", "EmbeddedStore"]

T = TypeVar("T")
# Runs inside a decision batch's transaction on the writer thread: (connection, the
# batch's first seq, the records' chain hashes, the writes). A concept keeps
# what it derives from the log (gateway/store/embedded/audit_tree.py) in step with it.
BatchHook = Callable[[sqlite3.Connection, int, list[str], list[DecisionWrite]], None]

log = logging.getLogger("xinyi.store")

# Entries per status list: the IETF draft's privacy advice is a large list, so
# one token's index says nothing about who holds it.
STATUS_LIST_SIZE = 131_072
# Start a new list once this share of the current one is handed out, so random
# allocation stays cheap and indexes stay unguessable.
_LIST_FILL = 0.5

_SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    partner TEXT NOT NULL,
    body TEXT NOT NULL,
    seq INTEGER
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL,
    partner TEXT NOT NULL,
    applied INTEGER NOT NULL,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_decision ON feedback (decision_id);
CREATE TABLE IF NOT EXISTS consents (
    consent_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    jti TEXT PRIMARY KEY,
    subject_key TEXT NOT NULL,
    kid TEXT NOT NULL,
    expires INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_subject ON tokens (subject_key, expires);
CREATE INDEX IF NOT EXISTS tokens_by_kid ON tokens (kid, expires);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS replay (
    key TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS health (
    id INTEGER PRIMARY KEY,
    checked REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS status_entries (
    list_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    status INTEGER NOT NULL,
    PRIMARY KEY (list_id, idx)
);
"""


_CREATE_TABLE = re.compile(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)


class _StatusList:
    __slots__ = ("allocated", "bits")

    def get(self, index: int) -> int:
        byte, shift = divmod(index, 4)
        return (self.bits[byte] >> (shift * 2)) & 0b11

    def __init__(self) -> None:
        self.bits = bytearray(STATUS_LIST_SIZE // 4)
        self.allocated: set[int] = set()

    def set(self, index: int, status: int) -> None:
        # Draft bit order: entry i sits in byte i // 4, starting at the least significant bits.
        byte, shift = divmod(index, 4)
        shift *= 2
        self.bits[byte] = (self.bits[byte] & ~(0b11 << shift)) | ((status & 0b11) << shift)


class EmbeddedStore(Store):
    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self._path = path
        # Read only (``audit verify``): no lock, no writer, so it may run beside the gateway.
        self._read_only = read_only
        self._writer: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._commit: GroupCommit[DecisionWrite] | None = None
        self._last_seq = 0
        self._last_hash = GENESIS
        self._committed_seq = 0  # the chain head as the writer thread last committed it
        self._consents: dict[str, Consent] = {}
        self._tat: dict[str, float] = {}
        self._lists: dict[str, _StatusList] = {}
        self._current_list = ""
        self._access: dict[str, AccessToken] = {}
        self._lock: StateLock | None = None
        # Why the last write failed, until one succeeds: readiness reports it.
        self._write_failure: str | None = None
        self._batch_hooks: list[BatchHook] = []

    # -- life cycle -------------------------------------------------------------
    async def open(self) -> None:
        if self._read_only:
            self._rconn = sqlite3.connect(
                f"{self._path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            return
        # Single writer by design: a second process on this state refuses to start.
        self._lock = lock_state_dir(self._path.parent)
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise

    async def _open(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xinyi-sqlite")
        await self._in_writer(self._open_writer)
        self._rconn = sqlite3.connect(self._path, check_same_thread=False)
        self._commit = GroupCommit(self._flush_decisions)
        for (raw,) in self._rconn.execute("SELECT body FROM consents"):
            consent = consent_from_json(raw)
            self._consents[consent.consent_id] = consent
        row = self._rconn.execute(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row:
            self._last_seq, self._last_hash = int(row[0]), str(row[1])
        self._committed_seq = self._last_seq
        # A token's status index is in its row; status_entries holds only the
        # entries set to something other than VALID (older state files also
        # hold VALID rows, which are harmless).
        for list_id, idx in self._rconn.execute(
            "SELECT json_extract(body, '$.status.list_id'), json_extract(body, '$.status.index')"
            " FROM tokens"
        ):
            self._lists.setdefault(list_id, _StatusList()).allocated.add(idx)
        for list_id, idx, status in self._rconn.execute(
            "SELECT list_id, idx, status FROM status_entries"
        ):
            slist = self._lists.setdefault(list_id, _StatusList())
            slist.allocated.add(idx)
            if status:
                slist.set(idx, status)
        self._current_list = next(
            (k for k, v in self._lists.items() if len(v.allocated) < STATUS_LIST_SIZE * _LIST_FILL),
            "",
        )

    def _open_writer(self) -> None:
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        conn.executescript(_SCHEMA)
        # State files from before decisions knew their record's seq.
        if "seq" not in {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}:
            conn.execute("ALTER TABLE decisions ADD COLUMN seq INTEGER")
        conn.execute("PRAGMA synchronous = FULL")
        self._wconn = conn
        # The state holds consents and the audit trail: owner only, like the keys.
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{self._path}{suffix}")
            if path.exists():
                path.chmod(0o600)

    async def close(self) -> None:
        if self._commit is not None:
            await self._commit.close()
        if self._writer is not None:
            if self._wconn is not None:
                await self._in_writer(self._wconn.close)
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._rconn is not None:
            self._rconn.close()
            self._rconn = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def check(self) -> None:
        """Readable, writable, and the audit chain's head is this process's.

        A decision is answered only once its audit record is durable, so a store
        that cannot append is not ready, whatever a read says.
        """
        if self._rconn is None:
            raise StoreUnavailable("the embedded store is not open")
        try:
            self._rconn.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"state database is not readable: {exc}") from exc
        try:
            await self._in_writer(self._probe)
        except StoreUnavailable:
            raise StoreUnavailable(
                f"the audit log cannot be written: {self._write_failure}"
            ) from None

    def _probe(self) -> None:
        """On the writer thread: the chain head is ours, and a durable write goes through."""
        conn = self._wconn
        assert conn is not None
        (head,) = conn.execute("SELECT coalesce(max(seq), 0) FROM audit").fetchone()
        if head != self._committed_seq:
            raise sqlite3.IntegrityError("the audit log was appended to by another process")
        self._transaction([("INSERT OR REPLACE INTO health VALUES (1, ?)", (time.time(),))])

    def _write_failed(self, cause: str) -> None:
        # Logged once per failure spell, not once per refused decision.
        if self._write_failure is None:
            log.error("state database cannot be written", extra={"error": cause})
        self._write_failure = cause

    async def _in_writer(self, fn: Any, *args: Any) -> Any:
        if self._writer is None:
            raise StoreUnavailable("the embedded store is not open")
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)
        except sqlite3.Error as exc:
            self._write_failed(f"{type(exc).__name__}: {exc}")
            raise StoreUnavailable(f"state database write failed: {exc}") from exc
        self._write_failure = None
        return result

    def _transaction(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        conn = self._wconn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                conn.execute(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _batch(
        self,
        tables: list[tuple[str, list[tuple[Any, ...]]]],
        hook_args: tuple[int, list[str], list[DecisionWrite]] | None = None,
    ) -> None:
        conn = self._wconn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in tables:
                if rows:
                    conn.executemany(sql, rows)
            if hook_args is not None:
                for hook in self._batch_hooks:
                    hook(conn, *hook_args)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _append(
        self,
        head: int,
        tables: list[tuple[str, list[tuple[Any, ...]]]],
        hook_args: tuple[int, list[str], list[DecisionWrite]] | None = None,
    ) -> None:
        self._batch(tables, hook_args)
        self._committed_seq = head

    # -- for concept modules (gateway/store/embedded/<concept>.py) -------------------
    # Each concept keeps its own tables but shares this store's single writer, so
    # its rows can join the same transaction as the change that causes them.
    def add_batch_hook(self, hook: BatchHook) -> None:
        """Run ``hook`` in every decision batch's transaction (see ``BatchHook``)."""
        if hook not in self._batch_hooks:
            self._batch_hooks.append(hook)

    @property
    def reader(self) -> sqlite3.Connection:
        """The read connection on the loop (WAL: indexed reads never wait for the writer)."""
        if self._rconn is None:
            raise StoreUnavailable("the embedded store is not open")
        return self._rconn

    async def ensure_schema(self, script: str) -> None:
        """Create a concept's tables (idempotent ``CREATE … IF NOT EXISTS`` script).

        A read-only store (``audit verify`` beside a serving gateway) creates
        nothing: what the serving gateway has not made, it reads as absent.
        """
        if self._read_only:
            self._empty_stand_ins(script)
            return

        def run() -> None:
            assert self._wconn is not None
            self._wconn.executescript(script)

        await self._in_writer(run)

    def _empty_stand_ins(self, script: str) -> None:
        # A table the serving gateway has not made yet (an older state file) reads
        # as empty: an empty TEMP table of the same shape stands in for it.
        conn = self.reader
        for statement in script.split(";"):
            found = _CREATE_TABLE.match(statement)
            if found is None:
                continue
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (found[1],)
            ).fetchone()
            if exists is None:
                conn.execute(_CREATE_TABLE.sub("CREATE TEMP TABLE IF NOT EXISTS \\1", statement))

    async def write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run statements in one durable transaction on the writer thread."""
        await self._in_writer(self._transaction, statements)

    async def in_writer(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(connection, *args)`` on the writer thread inside one transaction."""

        def run() -> Any:
            conn = self._wconn
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result

        return await self._in_writer(run)

    # -- rate limits: GCRA, one theoretical arrival time per key ------------------
    async def rate_limit(self, key: str, per_second: float, burst: int) -> float:
        now = time.monotonic()
        interval = 1.0 / per_second
        tat = max(self._tat.get(key, now), now) + interval
        excess = tat - now - interval * burst
        # Summed float intervals drift by ~1e-13 s: without the tolerance the last
        # request of a full burst could be refused (e.g. the 100th at 50/s).
        if excess > 1e-9:
            return excess
        self._tat[key] = tat
        return 0.0

    # -- consents ------------------------------------------------------------------
    async def put_consent(self, consent: Consent) -> None:
        await self._in_writer(
            self._transaction,
            [
                (
                    "INSERT INTO consents VALUES (?, ?)",
                    (consent.consent_id, consent_to_json(consent)),
                )
            ],
        )
        self._consents[consent.consent_id] = consent

    async def get_consent(self, consent_id: str) -> Consent | None:
        return self._consents.get(consent_id)

    async def revoke_consent(self, consent_id: str, at: dt.datetime) -> bool:
        current = self._consents.get(consent_id)
        if current is None:
            return False
        if current.revoked_at is not None:
            return True
        revoked = Consent(**{**_consent_fields(current), "revoked_at": at})
        await self._in_writer(
            self._transaction,
            [
                (
                    "UPDATE consents SET body = ? WHERE consent_id = ?",
                    (consent_to_json(revoked), consent_id),
                )
            ],
        )
        self._consents[consent_id] = revoked
        return True

    # -- decisions -------------------------------------------------------------------
    async def record_decision(self, write: DecisionWrite) -> None:
        if self._commit is None:
            raise StoreUnavailable("the embedded store is not open")
        await self._commit.submit(write)

    async def _flush_decisions(self, batch: list[DecisionWrite]) -> None:
        seq, prev = self._last_seq, self._last_hash
        audit, decisions, tokens, keys, slots = [], [], [], [], []
        hashes: list[str] = []
        for write in batch:
            seq += 1
            # The entry is stored in its canonical form: one serialisation serves
            # the hash and the row.
            entry, digest = link(prev, seq, write.audit.as_dict())
            audit.append((seq, entry.decode(), prev, digest))
            hashes.append(digest)
            if write.body is not None:
                decisions.append((write.decision_id, write.partner, write.body.decode(), seq))
            if (t := write.token) is not None:
                tokens.append(
                    (t.jti, t.subject_key, t.kid, t.expires, orjson.dumps(t.as_dict()).decode())
                )
            record = write.idempotency_record()
            if record is not None and write.idempotency is not None:
                keys.append(
                    (write.idempotency[0], record.to_json(), time.time() + IDEMPOTENCY_TTL_S)
                )
            # A token's row already records its slot (see open()); only a slot
            # without one needs its own row.
            if write.status is not None and (
                write.token is None or write.token.status != write.status
            ):
                slots.append((write.status.list_id, write.status.index))
            prev = digest
        # One executemany per table: the writer thread holds the GIL for less time.
        await self._in_writer(
            self._append,
            seq,
            [
                ("INSERT INTO audit VALUES (?, ?, ?, ?)", audit),
                ("INSERT INTO decisions VALUES (?, ?, ?, ?)", decisions),
                ("INSERT INTO tokens VALUES (?, ?, ?, ?, ?)", tokens),
                ("INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?)", keys),
                ("INSERT INTO status_entries VALUES (?, ?, 0)", slots),
            ],
            (self._last_seq + 1, hashes, batch) if self._batch_hooks else None,
        )
        # Only a committed batch moves the chain head.
        self._last_seq, self._last_hash = seq, prev

    async def get_decision(self, decision_id: str) -> tuple[str, dict[str, Any]] | None:
        assert self._rconn is not None
        row = self._rconn.execute(
            "SELECT partner, body FROM decisions WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        return (str(row[0]), orjson.loads(row[1])) if row else None

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

        added: bool = await self.in_writer(add)
        return added

    # -- token status lists ---------------------------------------------------------
    async def allocate_status(self) -> StatusRef:
        slist = self._lists.get(self._current_list)
        if slist is None or len(slist.allocated) >= STATUS_LIST_SIZE * _LIST_FILL:
            if slist is not None:
                # A filled list never hands out an index again: only its bits are read.
                slist.allocated = set()
            self._current_list = secrets.token_hex(8)
            slist = self._lists.setdefault(self._current_list, _StatusList())
        while True:
            index = random_below(STATUS_LIST_SIZE)
            if index not in slist.allocated:
                slist.allocated.add(index)
                return StatusRef(self._current_list, index)

    async def set_status(self, ref: StatusRef, status: int) -> None:
        await self._in_writer(
            self._transaction,
            [
                (
                    "INSERT INTO status_entries VALUES (?, ?, ?)"
                    " ON CONFLICT (list_id, idx) DO UPDATE SET status = excluded.status",
                    (ref.list_id, ref.index, status),
                )
            ],
        )
        self._lists.setdefault(ref.list_id, _StatusList()).set(ref.index, status)

    async def status_list(self, list_id: str) -> tuple[bytes, int] | None:
        slist = self._lists.get(list_id)
        return (bytes(slist.bits), STATUS_LIST_SIZE) if slist else None

    # -- audit -------------------------------------------------------------------------
    async def audit_records(self, after_seq: int, limit: int) -> list[AuditRecord]:
        assert self._rconn is not None
        rows = self._rconn.execute(
            "SELECT seq, entry, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [AuditRecord(int(s), orjson.loads(e), str(p), str(h)) for s, e, p, h in rows]

    # -- issued tokens --------------------------------------------------------------------
    async def token_status(self, ref: StatusRef) -> int:
        slist = self._lists.get(ref.list_id)
        return slist.get(ref.index) if slist else 0

    def _tokens(self, where: str, value: str, now: int) -> list[IssuedToken]:
        assert self._rconn is not None
        rows = self._rconn.execute(
            f"SELECT body FROM tokens WHERE {where} = ? AND expires > ?",  # noqa: S608 - fixed column names
            (value, now),
        ).fetchall()
        return [IssuedToken.from_dict(orjson.loads(raw)) for (raw,) in rows]

    async def get_token(self, jti: str) -> IssuedToken | None:
        assert self._rconn is not None
        row = self._rconn.execute("SELECT body FROM tokens WHERE jti = ?", (jti,)).fetchone()
        return IssuedToken.from_dict(orjson.loads(row[0])) if row else None

    async def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        assert self._rconn is not None
        row = self._rconn.execute(
            "SELECT record FROM idempotency WHERE key = ? AND expires > ?", (key, time.time())
        ).fetchone()
        return IdempotencyRecord.from_json(row[0]) if row else None

    async def put_idempotency(self, key: str, record: IdempotencyRecord, ttl_s: int) -> None:
        await self._in_writer(
            self._transaction,
            [
                ("DELETE FROM idempotency WHERE expires < ?", (time.time(),)),
                (
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?)",
                    (key, record.to_json(), time.time() + ttl_s),
                ),
            ],
        )

    async def live_tokens(self, subject_key: str, now: int) -> list[IssuedToken]:
        return self._tokens("subject_key", subject_key, now)

    async def tokens_signed_by(self, kid: str, now: int) -> list[IssuedToken]:
        return self._tokens("kid", kid, now)

    # -- OAuth ----------------------------------------------------------------------------
    async def claim_once(self, key: str, ttl_s: float) -> bool:
        # Durable, so a replayed client assertion stays refused across a restart.
        now = time.time()

        def claim() -> bool:
            conn = self._wconn
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM replay WHERE expires < ?", (now,))
                cur = conn.execute("INSERT OR IGNORE INTO replay VALUES (?, ?)", (key, now + ttl_s))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return cur.rowcount == 1

        claimed: bool = await self._in_writer(claim)
        return claimed

    async def release(self, key: str) -> None:
        await self._in_writer(self._transaction, [("DELETE FROM replay WHERE key = ?", (key,))])

    async def put_access_token(self, digest: str, token: AccessToken) -> None:
        # Access tokens live in memory: after a restart partners simply exchange again.
        now = time.time()
        if len(self._access) > 10_000:
            self._access = {k: v for k, v in self._access.items() if v.expires > now}
        self._access[digest] = token

    async def get_access_token(self, digest: str) -> AccessToken | None:
        token = self._access.get(digest)
        return token if token is not None and token.expires > time.time() else None


def _consent_fields(c: Consent) -> dict[str, Any]:
    return {name: getattr(c, name) for name in c.__dataclass_fields__}

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
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from gateway.audit.chain import GENESIS, link_audit
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
from gateway.store.embedded import (
    access_tokens,
    feedback,
    idempotency,
    issued_tokens,
    replay,
    status_lists,
)
from gateway.store.embedded.leases import ProcessLeases
from gateway.store.embedded.lock import StateLock, lock_state_dir
from gateway.store.embedded.status_lists import STATUS_LIST_SIZE

__all__ = ["STATUS_LIST_SIZE", "EmbeddedStore"]

T = TypeVar("T")
# Runs inside a decision batch's transaction on the writer thread: (connection, the
# batch's first seq, the records' chain hashes, the writes). A concept keeps
# what it derives from the log (gateway/store/embedded/audit_tree.py) in step with it.
BatchHook = Callable[[sqlite3.Connection, int, list[str], list[DecisionWrite]], None]

log = logging.getLogger("xinyi.store")

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
CREATE TABLE IF NOT EXISTS consents (
    consent_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS health (
    id INTEGER PRIMARY KEY,
    checked REAL NOT NULL
);
"""
# Each concept owns its tables; the core creates those the decision batch writes to.
_SCHEMA += (
    feedback.SCHEMA
    + issued_tokens.SCHEMA
    + idempotency.SCHEMA
    + replay.SCHEMA
    + status_lists.SCHEMA
)


_CREATE_TABLE = re.compile(r"\s*CREATE TABLE IF NOT EXISTS (\w+)", re.IGNORECASE)


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
        self._feedback = feedback.EmbeddedFeedback(self)
        self._status = status_lists.EmbeddedStatusLists(self)
        self._issued = issued_tokens.EmbeddedIssuedTokens(self)
        self._idempotency = idempotency.EmbeddedIdempotency(self)
        self._replay = replay.EmbeddedReplay(self)
        self._access = access_tokens.EmbeddedAccessTokens()
        self._lock: StateLock | None = None
        # Why the last write failed, until one succeeds: readiness reports it.
        self._write_failure: str | None = None
        self._batch_hooks: list[BatchHook] = []
        # Background jobs that one holder runs at a time (the audit tree builder).
        self.leases = ProcessLeases()

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
        self._status.load(self._rconn)

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
            entry, digest = link_audit(prev, seq, write.audit)
            audit.append((seq, bytearray(entry), prev, digest))
            hashes.append(digest)
            if write.body is not None:
                decisions.append((write.decision_id, write.partner, bytearray(write.body), seq))
            if (t := write.token) is not None:
                issued = bytearray(orjson.dumps(t.as_dict()))
                tokens.append((t.jti, t.subject_key, t.kid, t.expires, issued))
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
        # The JSON goes in as the UTF-8 bytes it was serialised to, stored as TEXT
        # by the CAST (SQLite takes blob bytes as text unchanged): binding a str
        # cost a decode here and an encode back to UTF-8 in the writer, ~20 k
        # instructions a decision whose body has Chinese text. As bytearrays, not
        # bytes: the sqlite3 module binds those as they are, where for bytes it
        # looks for an adapter, raising and clearing an AttributeError each time.
        await self._in_writer(
            self._append,
            seq,
            [
                ("INSERT INTO audit VALUES (?, CAST(? AS TEXT), ?, ?)", audit),
                ("INSERT INTO decisions VALUES (?, ?, CAST(? AS TEXT), ?)", decisions),
                ("INSERT INTO tokens VALUES (?, ?, ?, ?, CAST(? AS TEXT))", tokens),
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
        return await self._feedback.add_feedback(decision_id, partner, applied, detail, at, limit)

    # -- token status lists (status_lists.py) ---------------------------------------
    async def allocate_status(self) -> StatusRef:
        return await self._status.allocate_status()

    async def set_status(self, ref: StatusRef, status: int) -> None:
        await self._status.set_status(ref, status)

    async def status_list(self, list_id: str) -> tuple[bytes, int] | None:
        return await self._status.status_list(list_id)

    # -- audit -------------------------------------------------------------------------
    async def audit_records(self, after_seq: int, limit: int) -> list[AuditRecord]:
        assert self._rconn is not None
        rows = self._rconn.execute(
            "SELECT seq, entry, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [AuditRecord(int(s), orjson.loads(e), str(p), str(h)) for s, e, p, h in rows]

    # -- issued tokens (issued_tokens.py) ----------------------------------------------
    async def token_status(self, ref: StatusRef) -> int:
        return await self._status.token_status(ref)

    async def get_token(self, jti: str) -> IssuedToken | None:
        return await self._issued.get_token(jti)

    async def live_tokens(self, subject_key: str, now: int) -> list[IssuedToken]:
        return await self._issued.live_tokens(subject_key, now)

    async def tokens_signed_by(self, kid: str, now: int) -> list[IssuedToken]:
        return await self._issued.tokens_signed_by(kid, now)

    # -- idempotency (idempotency.py) ----------------------------------------------------
    async def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        return await self._idempotency.get_idempotency(key)

    async def put_idempotency(self, key: str, record: IdempotencyRecord, ttl_s: int) -> None:
        await self._idempotency.put_idempotency(key, record, ttl_s)

    # -- OAuth (replay.py, access_tokens.py) ---------------------------------------------
    async def claim_once(self, key: str, ttl_s: float) -> bool:
        return await self._replay.claim_once(key, ttl_s)

    async def release(self, key: str) -> None:
        await self._replay.release(key)

    async def put_access_token(self, digest: str, token: AccessToken) -> None:
        await self._access.put_access_token(digest, token)

    async def get_access_token(self, digest: str) -> AccessToken | None:
        return await self._access.get_access_token(digest)


def _consent_fields(c: Consent) -> dict[str, Any]:
    return {name: getattr(c, name) for name in c.__dataclass_fields__}

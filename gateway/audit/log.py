"""The audit log's tree builder, checkpoint signer and prover, off the request path.

Decisions append records through the store's group commit and nothing more;
this service follows the log in the background: it extends the Merkle tree
(frontier, stored nodes, the decision and subject indexes) one page at a
time and signs a checkpoint every ``checkpoint_every`` records or
``checkpoint_seconds`` seconds. On Redis every replica runs it, but only the
holder of the builder's lease (gateway/audit/lease.py) does the work; the
others only ask for the lease, and take it over when its holder goes.

Callers that need the tree up to date (``checkpoint_now``, the subject view's
``sync``, retention) extend it themselves on any replica, lease or not: a step
applies only if no other replica extended the tree first, so two builders at
once cost repeated work, never a wrong tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.audit.archive import Archive
from gateway.audit.lease import LEASE_S, BuilderLease
from gateway.audit.merkle import (
    STORED_LEVEL,
    Frontier,
    PerfectHash,
    consistency_proof,
    inclusion_proof,
    node_hash,
    record_leaf,
)
from gateway.audit.notes import sign_checkpoint
from gateway.audit.store import AuditTreeStore, TreeExtension
from gateway.store.base import AuditRecord, Store, StoreUnavailable
from gateway.tokens.keys import KeyRing

__all__ = ["AuditLog", "LogDamaged", "ring_public_keys"]

log = logging.getLogger("xinyi.audit")

_PAGE = 1_000
_TILE = 1 << STORED_LEVEL


class LogDamaged(Exception):
    """The log does not continue where the tree ends: run ``audit verify``."""


def ring_public_keys(ring: KeyRing) -> list[Ed25519PublicKey]:
    """Every Ed25519 key of the ring, retired ones too: old checkpoints stay verifiable."""
    return [
        k.private.public_key() for k in ring.entries() if isinstance(k.private, Ed25519PrivateKey)
    ]


def leaf_of(record: AuditRecord) -> bytes:
    return record_leaf(record.hash)


class AuditLog:
    def __init__(
        self,
        store: Store,
        tree: AuditTreeStore,
        ring: Callable[[], KeyRing],
        *,
        origin: str,
        every: int = 1000,
        seconds: float = 10.0,
        archive: Archive | None = None,
        lease_seconds: float = LEASE_S,
    ) -> None:
        self.store = store
        self.tree = tree
        self.archive = archive
        self.origin = origin
        self._ring = ring
        self._every = every
        self._seconds = seconds
        self._signed_size = -1
        self._signed_at = time.monotonic()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.lease = BuilderLease(tree, lease_seconds)

    # -- life cycle ------------------------------------------------------------------------
    async def open(self) -> None:
        await self.tree.open()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # Not held past a clean stop; a store that is gone lets it expire instead.
        with contextlib.suppress(StoreUnavailable):
            await self.lease.release()

    async def _run(self) -> None:
        # Idle polls cost a couple of reads; twice per checkpoint interval is enough.
        pause = max(0.5, min(5.0, self._seconds / 2))
        # The lease is asked for more often than that: it is renewed in time, and
        # a free one is taken within a renewal interval.
        tick = min(pause, self.lease.renew_every)
        due = time.monotonic() + pause  # the first pass a pause after the start, as ever
        while True:
            await asyncio.sleep(tick)
            try:
                taken = not self.lease.held
                if not await self.lease.hold():
                    continue
                if taken:
                    log.info("audit tree builder lease taken", extra={"holder": self.lease.holder})
                    self._signed_size = -1  # another replica signed meanwhile: read how far
                now = time.monotonic()
                if now < due:
                    continue
                due = now + pause
                await self.maybe_checkpoint()
            except (StoreUnavailable, LogDamaged) as exc:
                log.error("audit checkpointing paused", extra={"error": str(exc)})
            except Exception:  # pragma: no cover - a bug must not stop the loop for good
                log.exception("audit checkpointing failed")

    # -- records -----------------------------------------------------------------------------
    async def records(self, after_seq: int, limit: int) -> list[AuditRecord]:
        """Records after ``after_seq`` from archive segments and hot state, seamlessly."""
        while True:
            archived = await self.tree.archived_size()
            if after_seq < archived:
                if self.archive is None:
                    raise LogDamaged(f"records up to {archived} are archived and no archive is set")
                old = self.archive.records(after_seq, min(limit, archived - after_seq))
                if not old or len(old) == limit:
                    return old
                # A page may span the archive's end and hot state.
                return old + await self.records(old[-1].seq, limit - len(old))
            page = await self.store.audit_records(after_seq, limit)
            # Archiving between the two reads would make the page skip records: read again.
            if (
                not page
                or page[0].seq == after_seq + 1
                or await self.tree.archived_size() == archived
            ):
                return page

    async def scan(self, cursor: int, limit: int) -> tuple[list[AuditRecord], int]:
        """Every record as stored, archive segments first (for ``audit verify``).

        Cursor 0 is the first archived record; past the archived ones (``held`` of
        them) the cursor continues into the hot store's own scan, which starts
        after the archived size.
        """
        archived = await self.tree.archived_size()
        held = 0
        for segment in self.archive.segments() if self.archive is not None else []:
            _, records = self.archive.read(segment)  # type: ignore[union-attr]
            if cursor < held + len(records):
                page = records[cursor - held : cursor - held + limit]
                return page, cursor + len(page)
            held += len(records)
        page, after = await self.tree.scan(cursor - held + archived, limit)
        return page, after - archived + held

    async def all_checkpoints(self, after_size: int, limit: int) -> list[tuple[int, str]]:
        """Checkpoints from archive segments and hot state, smallest first."""
        found = dict(self.archive.checkpoints()) if self.archive is not None else {}
        found.update(await self.tree.checkpoints(after_size, limit))
        return [(s, n) for s, n in sorted(found.items()) if s > after_size][:limit]

    # -- retention ----------------------------------------------------------------------------
    async def archive_before(self, cutoff: dt.datetime, segment_records: int) -> int:
        """Move records older than ``cutoff`` to archive segments, each ending
        at a checkpoint; how many moved."""
        if self.archive is None:
            return 0
        moved = 0
        async with self._lock:
            start = await self.tree.archived_size()
            end = await self._old_end(start, cutoff)
            sizes = [s for s, _ in await self.tree.checkpoints(start, 1_000_000) if s <= end]
            while sizes:
                fitting = [s for s in sizes if s - start <= segment_records]
                target = fitting[-1] if fitting else sizes[0]
                records = await self.store.audit_records(start, target - start)
                if len(records) != target - start or records[-1].seq != target:
                    raise LogDamaged(f"records {start + 1}…{target} are not all in hot state")
                checkpoints = await self.tree.checkpoints(start, 1_000_000)
                self.archive.write(
                    records, [(s, n) for s, n in checkpoints if s <= target], self.origin
                )
                await self.tree.drop_archived(target, records)
                moved += len(records)
                start = target
                sizes = [s for s in sizes if s > target]
        return moved

    async def _old_end(self, start: int, cutoff: dt.datetime) -> int:
        """The last seq, from ``start`` on, of the run of records older than ``cutoff``."""
        built = (await self.tree.tree_state()).size
        end = start
        while end < built:
            page = await self.store.audit_records(end, min(_PAGE, built - end))
            if not page:
                break
            for record in page:
                if dt.datetime.fromisoformat(record.entry["time"]) >= cutoff:
                    return end
                end = record.seq
        return end

    # -- the tree ----------------------------------------------------------------------------
    async def sync(self) -> Frontier:
        """Extend the tree to the end of the log; the tree as it now stands."""
        async with self._lock:
            state = await self.tree.tree_state()
            while True:
                page = await self.records(state.size, _PAGE)
                if not page:
                    return state
                step = TreeExtension(
                    state.size, Frontier(state.size, list(state.hashes)), [], [], []
                )
                for record in page:
                    if record.seq != step.frontier.size + 1:
                        raise LogDamaged(
                            f"record {step.frontier.size + 1} is not where the log continues"
                        )
                    step.frontier.append(leaf_of(record), step.nodes)
                    entry = record.entry
                    if "kind" not in entry:
                        step.decisions.append((entry["decision_id"], record.seq))
                    if entry.get("subject"):
                        step.subjects.append((entry["subject"], record.seq))
                if await self.tree.extend_tree(step):
                    state = step.frontier
                    await self.lease.keep()
                    if len(page) < _PAGE:
                        # The log ended there when it was read: every record acknowledged
                        # before this call is in. Reading again would chase a log that
                        # grows under load, a few records a step.
                        return state
                else:  # another replica extended it: start from what it wrote
                    state = await self.tree.tree_state()

    async def maybe_checkpoint(self) -> tuple[int, str] | None:
        """Sign a checkpoint if enough records or time have passed since the last one."""
        state = await self.sync()
        if self._signed_size < 0:
            latest = await self.tree.latest_checkpoint()
            self._signed_size = latest[0] if latest else 0
        unsigned = state.size - self._signed_size
        if unsigned <= 0:
            return None
        if unsigned < self._every and time.monotonic() - self._signed_at < self._seconds:
            return None
        return await self._sign(state)

    async def checkpoint_now(self) -> tuple[int, str]:
        """Bring the tree up to date and sign it (unless that size is signed already)."""
        state = await self.sync()
        existing = await self.tree.checkpoint(state.size)
        if existing is not None:
            return state.size, existing
        return await self._sign(state)

    async def _sign(self, state: Frontier) -> tuple[int, str]:
        key = self._ring().active("EdDSA")
        if key is None or not isinstance(key.private, Ed25519PrivateKey):
            raise RuntimeError("no active Ed25519 key to sign audit checkpoints")
        note = sign_checkpoint(self.origin, state.size, state.root(), key.private)
        if not await self.tree.put_checkpoint(state.size, note):
            note = await self.tree.checkpoint(state.size) or note
        self._signed_size, self._signed_at = state.size, time.monotonic()
        return state.size, note

    def public_keys(self) -> list[Ed25519PublicKey]:
        return ring_public_keys(self._ring())

    # -- proofs ----------------------------------------------------------------------------
    def _prover(self) -> PerfectHash:
        tiles: dict[int, list[bytes]] = {}

        async def leaves(tile: int) -> list[bytes]:
            if tile not in tiles:
                page = await self.records(tile * _TILE, _TILE)
                tiles[tile] = [leaf_of(r) for r in page]
            return tiles[tile]

        async def perfect(level: int, index: int) -> bytes:
            if level >= STORED_LEVEL:
                stored = await self.tree.node(level, index)
                if stored is not None:
                    return stored
                return node_hash(
                    await perfect(level - 1, 2 * index), await perfect(level - 1, 2 * index + 1)
                )
            first = index << level
            tile = await leaves(first // _TILE)
            offset = first % _TILE
            hashes = tile[offset : offset + (1 << level)]
            if len(hashes) != 1 << level:
                raise LogDamaged(f"records {first + 1}…{first + (1 << level)} are not all there")
            while len(hashes) > 1:
                hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
            return hashes[0]

        return perfect

    async def inclusion(self, seq: int, tree_size: int) -> list[bytes]:
        return await inclusion_proof(seq - 1, tree_size, self._prover())

    async def consistency(self, old: int, new: int) -> list[bytes]:
        return await consistency_proof(old, new, self._prover())

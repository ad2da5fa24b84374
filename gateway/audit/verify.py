"""``audit verify``: recompute the chain and the tree, check every checkpoint.

Archive segments are read first, then hot state, as one log.

Records are read in order with a look-ahead window, so when the chain breaks
the damage can be named: a record ``edited`` (its content, or its hash
recomputed), ``deleted``, ``inserted`` or ``reordered``, or a
``checkpoint_mismatch`` (a checkpoint whose signature or root hash does not
match the records, e.g. the whole chain after some point rewritten).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.archive import Archive
from gateway.audit.chain import GENESIS, canonical, chain_hash
from gateway.audit.log import AuditLog, ring_public_keys
from gateway.audit.merkle import Frontier, record_leaf
from gateway.audit.notes import NoteError, parse_checkpoint, verify_checkpoint
from gateway.audit.store import audit_tree_store
from gateway.runtime import open_store
from gateway.store.base import AuditRecord
from gateway.tokens.keys import KeyRing

__all__ = ["Damage", "Verification", "verify_log", "verify_store"]

_PAGE = 5_000
_WINDOW = 64  # how far ahead a moved record is looked for

# (cursor, limit) → records in stored order and the cursor after them
Reader = Callable[[int, int], Awaitable[tuple[list[AuditRecord], int]]]


@dataclass(frozen=True, slots=True)
class Damage:
    seq: int
    kind: str  # edited | deleted | inserted | reordered | checkpoint_mismatch
    detail: str

    def __str__(self) -> str:
        return f"audit chain broken at record {self.seq}: {self.kind} ({self.detail})"


@dataclass(frozen=True, slots=True)
class Verification:
    records: int
    checkpoints: int
    head: str
    damage: Damage | None
    signatures: bool = True  # False when no key ring was at hand to check them

    @property
    def ok(self) -> bool:
        return self.damage is None

    def __str__(self) -> str:
        if self.damage is not None:
            return str(self.damage)
        signed = "signed " if self.signatures else "(signatures NOT checked: no key ring) "
        return (
            f"audit chain intact: {self.records} records, {self.checkpoints} {signed}"
            f"checkpoints verified, head {self.head[:16]}…"
        )


def _hash_at(record: AuditRecord, prev: str, seq: int) -> bool:
    return chain_hash(prev, seq, canonical(record.entry)) == record.hash


def _true_seq(record: AuditRecord, around: int) -> int | None:
    """The sequence number the record's hash was made for, near ``around``."""
    if _hash_at(record, record.prev_hash, record.seq):
        return record.seq
    for seq in range(max(1, around - _WINDOW), around + _WINDOW + 1):
        if _hash_at(record, record.prev_hash, seq):
            return seq
    return None


def _classify(window: list[AuditRecord], prev: str, prev_prev: str, k: int) -> Damage:
    """Why ``window[0]`` is not record ``k`` following hash ``prev``."""
    first = window[0]
    j = next(
        (i for i, r in enumerate(window) if r.prev_hash == prev and _hash_at(r, prev, k)), None
    )
    if j == 0:
        return Damage(k, "edited", f"its sequence number was changed to {first.seq}")
    if j is not None:
        moved = any((_true_seq(r, k) or 0) > k for r in window[:j])
        if moved:
            return Damage(k, "reordered", f"record {k} comes {j} place(s) later than it should")
        return Damage(k, "inserted", f"{j} record(s) not in the chain come before record {k}")
    true = _true_seq(first, k)
    if true == k - 1 and first.prev_hash == prev_prev:
        return Damage(k - 1, "inserted", f"record {k - 1} is not in the chain; the next one is")
    if true is not None and true > k and first.prev_hash != prev:
        missing = f"{k}…{true - 1}" if true - 1 > k else str(k)
        return Damage(k, "deleted", f"record(s) {missing} are missing")
    if true == k and first.prev_hash != prev:
        return Damage(k - 1, "edited", "its hash was recomputed: the next record does not follow")
    return Damage(k, "edited", "its hash does not match its content")


async def verify_log(
    audit: AuditLog,
    origin: str | None,
    keys: list[Ed25519PublicKey] | None,
) -> Verification:
    """Check ``audit``'s whole log (archives, then hot state) against its checkpoints,
    signatures by ``keys`` (None: roots only). With ``origin`` None, every checkpoint
    must name the origin the first one names."""
    frontier = Frontier()
    prev, prev_prev, k, checked = GENESIS, GENESIS, 1, 0
    buffer: deque[AuditRecord] = deque()
    exhausted = False
    cursor = 0
    read: Reader = audit.scan
    pending = await audit.all_checkpoints(0, 1_000)

    async def fill() -> None:
        nonlocal exhausted, cursor
        while not exhausted and len(buffer) <= _WINDOW:
            page, cursor = await read(cursor, _PAGE)
            buffer.extend(page)
            exhausted = not page

    async def check_checkpoints() -> Damage | None:
        nonlocal pending, checked, origin
        while pending and pending[0][0] <= frontier.size:
            size, note = pending.pop(0)
            if size == frontier.size:
                try:
                    if keys is None:
                        cp = parse_checkpoint(note)
                        if cp.origin != (origin or cp.origin):
                            raise NoteError(f"the checkpoint names origin {cp.origin!r}")
                    else:
                        cp = verify_checkpoint(note, origin, keys)
                except NoteError as exc:
                    return Damage(size, "checkpoint_mismatch", f"checkpoint {size}: {exc}")
                origin = cp.origin
                if cp.size != size:
                    return Damage(size, "checkpoint_mismatch", f"checkpoint {size} names {cp.size}")
                if cp.root != frontier.root():
                    return Damage(
                        checked_size + 1,
                        "checkpoint_mismatch",
                        f"records {checked_size + 1}…{size} are not what checkpoint {size} signed",
                    )
                checked += 1
            if not pending:
                pending = await audit.all_checkpoints(size, 1_000)
        return None

    checked_size = 0
    while True:
        await fill()
        if not buffer:
            break
        record = buffer[0]
        if record.seq == k and record.prev_hash == prev and _hash_at(record, prev, k):
            buffer.popleft()
            frontier.append(record_leaf(record.hash))
            prev_prev, prev, k = prev, record.hash, k + 1
            before = checked
            damage = await check_checkpoints()
            if damage is not None:
                return Verification(frontier.size, checked, prev, damage)
            if checked != before:
                checked_size = frontier.size
            continue
        return Verification(
            frontier.size, checked, prev, _classify(list(buffer), prev, prev_prev, k)
        )
    expected = max((await audit.tree.tree_state()).size, *(s for s, _ in pending), 0)
    if expected > frontier.size:
        damage = Damage(
            frontier.size + 1,
            "deleted",
            f"the log ends at {frontier.size} but was {expected} records long",
        )
        return Verification(frontier.size, checked, prev, damage)
    return Verification(frontier.size, checked, prev, None, signatures=keys is not None)


def _missing_database(store_url: str) -> Path | None:
    """The SQLite file a store URL names, when it does not exist."""
    if not store_url.startswith("sqlite:///"):
        return None
    path = Path(store_url.removeprefix("sqlite://"))
    return None if path.is_file() else path


async def verify_store(
    store_url: str,
    keys_dir: Path | None = None,
    origin: str | None = None,
    archive_dir: Path | None = None,
) -> tuple[bool, str]:
    # Opening a store creates it: a mistyped path would then verify as an empty, intact log.
    missing = _missing_database(store_url)
    if missing is not None:
        return False, f"no state database at {missing}: nothing was verified"
    # Without the key ring the roots are still checked, and the output says so.
    has_ring = keys_dir is not None and (keys_dir / "ring.json").is_file()
    ring = KeyRing.load(keys_dir) if keys_dir is not None and has_ring else None
    keys = ring_public_keys(ring) if ring is not None else None
    store = open_store(store_url, read_only=True)
    await store.open()
    try:
        audit = AuditLog(
            store,
            audit_tree_store(store),
            lambda: ring or KeyRing(Path(), []),
            origin=origin or "",
            archive=Archive(archive_dir) if archive_dir is not None else None,
        )
        await audit.open()
        result = await verify_log(audit, origin, keys)
        return result.ok, str(result)
    finally:
        await store.close()

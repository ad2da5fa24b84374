"""The audit tree, checkpoints and ``audit verify`` on every backend, with the log tampered.

Each kind of damage is made the way someone with write access to the state
would make it (SQL on the embedded database, list commands on Redis), and
verification must name the first bad sequence number and the kind.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from gateway.audit.chain import link
from gateway.audit.log import AuditLog, ring_public_keys
from gateway.audit.store import audit_tree_store
from gateway.audit.verify import Verification, verify_log
from gateway.store.base import AuditRecord, Store
from gateway.store.embedded import EmbeddedStore
from gateway.store.redis import RedisStore
from gateway.tokens.keys import KeyRing
from tests.audit import rfc9162
from tests.contract.test_store_contract import _write

ORIGIN = "test.example/audit"


async def _log(store: Store, tmp_path: Path, n: int = 20) -> tuple[AuditLog, KeyRing]:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    audit = AuditLog(store, audit_tree_store(store), lambda: ring, origin=ORIGIN, every=5)
    await audit.open()
    for i in range(n):
        await store.record_decision(_write(i))
        if (i + 1) % 5 == 0:
            await audit.checkpoint_now()
    return audit, ring


async def _verify(audit: AuditLog, ring: KeyRing) -> Verification:
    return await verify_log(audit, ORIGIN, ring_public_keys(ring))


async def _stored(store: Store) -> list[AuditRecord]:
    return await store.audit_records(0, 10_000)


async def _rewrite(store: Store, records: list[AuditRecord]) -> None:
    """Replace the stored log with ``records``, in this order, as an intruder would."""
    if isinstance(store, EmbeddedStore):
        rows = [
            (
                r.seq,
                orjson.dumps(r.entry, option=orjson.OPT_SORT_KEYS).decode(),
                r.prev_hash,
                r.hash,
            )
            for r in records
        ]
        await store.write(
            [("DELETE FROM audit", ())]
            + [("INSERT INTO audit VALUES (?, ?, ?, ?)", row) for row in rows]
        )
    else:
        assert isinstance(store, RedisStore)
        key = store.audit_key("log")
        await store.run("DEL", key)
        await store.run(
            "RPUSH",
            key,
            *[
                orjson.dumps(
                    {"seq": r.seq, "entry": r.entry, "prev_hash": r.prev_hash, "hash": r.hash}
                )
                for r in records
            ],
        )


def _rechained(records: list[AuditRecord], start: int) -> list[AuditRecord]:
    out = records[:start]
    prev = out[-1].hash
    for r in records[start:]:
        _, digest = link(prev, r.seq, r.entry)
        out.append(AuditRecord(r.seq, r.entry, prev, digest))
        prev = digest
    return out


def _edited(r: AuditRecord) -> AuditRecord:
    return AuditRecord(r.seq, r.entry | {"outcome": "refused"}, r.prev_hash, r.hash)


def _deleted(rs: list[AuditRecord]) -> list[AuditRecord]:
    return rs[:6] + rs[7:]


def _inserted(rs: list[AuditRecord]) -> list[AuditRecord]:
    # A careful forger: the new record links to record 6, the rest are renumbered.
    entry = rs[6].entry | {"decision_id": "forged", "partner": "someone"}
    _, digest = link(rs[5].hash, 7, entry)
    forged = AuditRecord(7, entry, rs[5].hash, digest)
    later = [AuditRecord(r.seq + 1, r.entry, r.prev_hash, r.hash) for r in rs[6:]]
    return [*rs[:6], forged, *later]


def _reordered(rs: list[AuditRecord]) -> list[AuditRecord]:
    a, b = rs[6], rs[7]
    return [
        *rs[:6],
        AuditRecord(7, b.entry, b.prev_hash, b.hash),
        AuditRecord(8, a.entry, a.prev_hash, a.hash),
        *rs[8:],
    ]


TAMPERING: dict[str, tuple[Callable[[list[AuditRecord]], list[AuditRecord]], int, str]] = {
    "edited": (lambda rs: [*rs[:6], _edited(rs[6]), *rs[7:]], 7, "edited"),
    "edited_and_rehashed": (lambda rs: [*rs[:6], _rehash_one(rs[5], rs[6]), *rs[7:]], 7, "edited"),
    "deleted": (_deleted, 7, "deleted"),
    "tail_deleted": (lambda rs: rs[:-2], 19, "deleted"),
    "inserted": (_inserted, 7, "inserted"),
    "reordered": (_reordered, 7, "reordered"),
    # the whole chain rewritten from record 7: only the checkpoints can tell
    "rechained": (
        lambda rs: _rechained([*rs[:6], _edited(rs[6]), *rs[7:]], 6),
        6,
        "checkpoint_mismatch",
    ),
}


def _rehash_one(before: AuditRecord, r: AuditRecord) -> AuditRecord:
    edited = _edited(r)
    _, digest = link(before.hash, r.seq, edited.entry)
    return AuditRecord(r.seq, edited.entry, before.hash, digest)


async def test_untouched_log_verifies_with_every_checkpoint(store: Store, tmp_path: Path) -> None:
    audit, ring = await _log(store, tmp_path)
    result = await _verify(audit, ring)
    assert result.ok, result
    assert (result.records, result.checkpoints) == (20, 4)
    latest = await audit.tree.latest_checkpoint()
    assert latest is not None
    assert latest[0] == 20
    # The signed root is RFC 9162's MTH over the records' chain hashes.
    leaves = [bytes.fromhex(r.hash) for r in await _stored(store)]
    assert latest[1].split("\n")[2] == base64.b64encode(rfc9162.mth(leaves)).decode()


@pytest.mark.parametrize("damage", sorted(TAMPERING))
async def test_verify_names_the_record_and_the_damage(
    store: Store, tmp_path: Path, damage: str
) -> None:
    audit, ring = await _log(store, tmp_path)
    tamper, seq, kind = TAMPERING[damage]
    await _rewrite(store, tamper(await _stored(store)))
    result = await _verify(audit, ring)
    assert result.damage is not None, damage
    assert (result.damage.seq, result.damage.kind) == (seq, kind), str(result)


async def test_a_forged_checkpoint_is_named(store: Store, tmp_path: Path) -> None:
    audit, ring = await _log(store, tmp_path)
    note = await audit.tree.checkpoint(10)
    assert note is not None
    forged = note.replace("\n10\n", "\n10\n", 1).replace(note.split("\n")[2], "A" * 43 + "=")
    if isinstance(store, EmbeddedStore):
        await store.write([("UPDATE audit_checkpoints SET note = ? WHERE size = 10", (forged,))])
    else:
        assert isinstance(store, RedisStore)
        await store.run("HSET", store.audit_key("cps"), 10, forged)
    result = await _verify(audit, ring)
    assert result.damage is not None
    assert (result.damage.seq, result.damage.kind) == (10, "checkpoint_mismatch")


async def test_two_builders_extend_one_tree(store: Store, tmp_path: Path) -> None:
    audit, ring = await _log(store, tmp_path, n=7)
    other = AuditLog(store, audit_tree_store(store), lambda: ring, origin=ORIGIN)
    writes = [_write(i) for i in range(7, 12)]
    for write in writes:
        await store.record_decision(write)
    await other.sync()
    assert (await audit.sync()).size == 12
    size, _ = await audit.checkpoint_now()
    assert size == 12
    assert await audit.tree.decision_seq(writes[-1].decision_id) == 12
    assert await audit.tree.subject_seqs({"pseudonym-11", "pseudonym-0"}) == [1, 12]
    assert (await _verify(audit, ring)).ok


async def test_checkpoints_come_every_n_records_or_t_seconds(store: Store, tmp_path: Path) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    by_count = AuditLog(
        store, audit_tree_store(store), lambda: ring, origin=ORIGIN, every=3, seconds=1e9
    )
    await by_count.open()
    for i in range(2):
        await store.record_decision(_write(i))
    assert await by_count.maybe_checkpoint() is None
    await store.record_decision(_write(2))
    signed = await by_count.maybe_checkpoint()
    assert signed is not None
    assert signed[0] == 3
    await store.record_decision(_write(3))
    assert await by_count.maybe_checkpoint() is None  # one unsigned record, no time passed
    by_time = AuditLog(
        store, audit_tree_store(store), lambda: ring, origin=ORIGIN, every=1_000, seconds=1e-6
    )
    signed = await by_time.maybe_checkpoint()
    assert signed is not None
    assert signed[0] == 4
    assert await by_time.maybe_checkpoint() is None  # nothing new to sign

"""Retention on every backend: old records move to archive segments, nothing is lost,
``audit verify`` and proofs read archives and hot state as one log, and hot state
stops growing with traffic beyond the window."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
from pathlib import Path

import orjson

from gateway.audit.archive import Archive
from gateway.audit.log import AuditLog, ring_public_keys
from gateway.audit.store import audit_tree_store
from gateway.audit.verify import verify_log
from gateway.store.base import DecisionWrite, Store
from gateway.store.embedded import EmbeddedStore
from gateway.store.redis import RedisStore
from gateway.tokens.keys import KeyRing
from tests.audit import rfc9162
from tests.contract.test_store_contract import _write

ORIGIN = "test.example/audit"
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)  # every record is "old" by then


async def _audit(store: Store, tmp_path: Path) -> tuple[AuditLog, KeyRing]:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    audit = AuditLog(
        store,
        audit_tree_store(store),
        lambda: ring,
        origin=ORIGIN,
        archive=Archive(tmp_path / "archive"),
    )
    await audit.open()
    return audit, ring


async def _decide(store: Store, audit: AuditLog, n: int, every: int = 5) -> list[DecisionWrite]:
    writes = []
    for i in range(n):
        write = _write(i)
        await store.record_decision(write)
        writes.append(write)
        if (i + 1) % every == 0:
            await audit.checkpoint_now()
    return writes


async def test_archived_and_hot_records_read_verify_and_prove_as_one_log(
    store: Store, tmp_path: Path
) -> None:
    audit, ring = await _audit(store, tmp_path)
    writes = await _decide(store, audit, 30)
    assert await audit.archive_before(LATER, segment_records=10) == 30
    assert audit.archive is not None
    assert [(s.first, s.last) for s in audit.archive.segments()] == [(1, 10), (11, 20), (21, 30)]
    assert await store.audit_records(30, 10) == []
    assert await store.get_decision(writes[0].decision_id) is None  # its body went too
    writes += await _decide(store, audit, 5)

    everything = await audit.records(0, 1_000)
    assert [r.seq for r in everything] == list(range(1, 36))
    assert [r.entry["decision_id"] for r in everything] == [w.decision_id for w in writes]
    result = await verify_log(audit, ORIGIN, ring_public_keys(ring))
    assert result.ok, result
    assert (result.records, result.checkpoints) == (35, 7)

    # a proof reaching into archived leaves still verifies independently
    size, note = await audit.checkpoint_now()
    root = base64.b64decode(note.split("\n")[2])
    proof = await audit.inclusion(3, size)
    leaf = rfc9162.sha256(b"\x00" + bytes.fromhex(everything[2].hash))
    assert rfc9162.verify_inclusion(2, size, leaf, proof, root)
    old_note = await audit.tree.checkpoint(30)
    assert old_note is not None
    old_root = base64.b64decode(old_note.split("\n")[2])
    assert rfc9162.verify_consistency(30, size, old_root, root, await audit.consistency(30, size))


async def test_a_damaged_archive_segment_is_named(store: Store, tmp_path: Path) -> None:
    audit, ring = await _audit(store, tmp_path)
    await _decide(store, audit, 20)
    await audit.archive_before(LATER, segment_records=10)
    assert audit.archive is not None
    segment = audit.archive.segments()[1]
    lines = gzip.decompress(segment.path.read_bytes()).splitlines()
    record = orjson.loads(lines[4])  # seq 14
    record["entry"]["outcome"] = "refused"
    lines[4] = orjson.dumps(record)
    segment.path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    fresh, _ = await _audit(store, tmp_path)  # no cached segment
    result = await verify_log(fresh, ORIGIN, ring_public_keys(ring))
    assert result.damage is not None
    assert (result.damage.seq, result.damage.kind) == (14, "edited")


async def test_hot_state_stops_growing_beyond_the_window(store: Store, tmp_path: Path) -> None:
    audit, ring = await _audit(store, tmp_path)
    sizes = []
    for _ in range(6):
        await _decide(store, audit, 300, every=100)
        await audit.archive_before(LATER, segment_records=1_000)
        sizes.append(await _hot_size(store))
    # Once the first rounds have sized the file, the freed pages are reused:
    # further traffic leaves no trace in hot state.
    assert max(sizes[3:]) <= sizes[2], sizes
    assert len(await store.audit_records(0, 10_000)) == 0
    result = await verify_log(audit, ORIGIN, ring_public_keys(ring))
    assert result.ok, result
    assert result.records == 1_800
    # the measure is not blind: the same traffic without archiving does grow hot state
    await _decide(store, audit, 900, every=100)
    assert await _hot_size(store) > sizes[-1], sizes


async def _hot_size(store: Store) -> int:
    if isinstance(store, EmbeddedStore):
        # The database's pages (its file size once checkpointed; the WAL is bounded apart).
        pages = store.reader.execute("PRAGMA page_count").fetchone()[0]
        return int(pages) * int(store.reader.execute("PRAGMA page_size").fetchone()[0])
    assert isinstance(store, RedisStore)
    # What the audit slot holds per decision: the log, decision bodies, the indexes.
    lengths = [
        await store.run("LLEN", store.audit_key("log")),
        await store.run("HLEN", store.audit_key("ix")),
        await store.run("HLEN", store.audit_key("cps")),
        await store.run("HLEN", store.audit_key("nodes")),
    ]
    return sum(int(n) for n in lengths)


async def test_a_missing_archive_segment_is_named(store: Store, tmp_path: Path) -> None:
    audit, ring = await _audit(store, tmp_path)
    await _decide(store, audit, 30)
    await audit.archive_before(LATER, segment_records=10)
    assert audit.archive is not None
    audit.archive.segments()[1].path.unlink()  # records 11…20
    fresh, _ = await _audit(store, tmp_path)
    result = await verify_log(fresh, ORIGIN, ring_public_keys(ring))
    assert result.damage is not None
    assert (result.damage.seq, result.damage.kind) == (11, "deleted")


async def test_old_feedback_and_expired_entries_are_purged(store: Store, tmp_path: Path) -> None:
    import time

    from gateway.store.base import IdempotencyRecord

    audit, _ = await _audit(store, tmp_path)
    for at in (
        "2025-01-01T00:00:00+00:00",
        "2025-03-01T00:00:00+00:00",
        "2026-01-01T00:00:00+00:00",
    ):
        await store.add_feedback("dec_x", "demo-bank", True, {}, at, 10)
    await store.put_idempotency("k-old", IdempotencyRecord("f"), ttl_s=1)
    await store.put_idempotency("k-new", IdempotencyRecord("f"), ttl_s=3_600)
    gone = await audit.tree.purge_expired(time.time() + 10, 0, "2025-06-01T00:00:00+00:00")
    assert await store.get_idempotency("k-new") is not None
    if isinstance(store, EmbeddedStore):
        left = store.reader.execute("SELECT at FROM feedback").fetchall()
        assert left == [("2026-01-01T00:00:00+00:00",)]
        assert gone == 3  # two feedback rows and the expired idempotency key
    else:
        assert isinstance(store, RedisStore)
        # Each decision's feedback list and the idempotency key expire by their own TTLs.
        assert 0 < await store.run("TTL", store.key("fb", "dec_x")) <= store.feedback_ttl_s
        assert gone == 0

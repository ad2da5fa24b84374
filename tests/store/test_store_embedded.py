"""The embedded store against a real SQLite file: consents, decisions, audit chain, limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from gateway.audit.chain import GENESIS, link_hash, verify_chain
from gateway.audit.verify import verify_store
from gateway.store.base import (
    AuditEntry,
    Consent,
    DecisionWrite,
    IssuedToken,
    StatusRef,
    StoreUnavailable,
)
from gateway.store.embedded import STATUS_LIST_SIZE, EmbeddedStore
from gateway.store.embedded import core as embedded

NOW = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)


def audit(decision_id: str, outcome: str = "granted") -> AuditEntry:
    return AuditEntry(
        time="2025-06-01T08:00:00Z",
        partner="demo-bank",
        staff_id="staff-1",
        scene="loan",
        purpose="credit_loan_assessment",
        subject="pseudonym-abc",
        outcome=outcome,
        policy="loan.credit_products@2025.1",
        policy_hash="sha256:" + "1" * 64,
        policy_set="sha256:" + "2" * 64,
        consent_id="cns_x",
        contract="XYD-1",
        decision_id=decision_id,
        token_jti=None,
    )


def write(
    decision_id: str, status: StatusRef | None = None, token: IssuedToken | None = None
) -> DecisionWrite:
    return DecisionWrite(
        decision_id=decision_id,
        partner="demo-bank",
        body=orjson.dumps({"decision_id": decision_id, "outcome": "granted"}),
        audit=audit(decision_id),
        status=status,
        token=token,
    )


def token(jti: str, ref: StatusRef, subject_key: str = "sk1", expires: int = 2_000_000_000) -> Any:
    return IssuedToken(
        jti=jti,
        decision_id="d-" + jti,
        partner="demo-bank",
        scene="loan",
        purpose="credit_loan_assessment",
        subject_key=subject_key,
        kid="kid-1",
        status=ref,
        expires=expires,
        context={"loan_amount": 1000},
        benefits=("loan_rate_discount",),
    )


def consent(consent_id: str = "cns_1") -> Consent:
    return Consent(
        consent_id=consent_id,
        subject_kind="person",
        subject_key="key-of-subject",
        partner="demo-library",
        scenes=("library",),
        purpose="deposit_waiver",
        expires_at=NOW + dt.timedelta(days=30),
        created_at=NOW,
        created_by="demo-platform",
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.sqlite3"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[EmbeddedStore]:
    s = EmbeddedStore(db)
    await s.open()
    yield s
    await s.close()


async def reopen(old: EmbeddedStore, db: Path) -> EmbeddedStore:
    await old.close()
    new = EmbeddedStore(db)
    await new.open()
    return new


def url(db: Path) -> str:
    return f"sqlite:///{db}"


# -- consents -------------------------------------------------------------------------------


async def test_consents_persist_across_reopen(store: EmbeddedStore, db: Path) -> None:
    await store.put_consent(consent())
    assert await store.get_consent("cns_1") == consent()
    assert await store.get_consent("cns_other") is None
    later = NOW + dt.timedelta(days=1)
    assert await store.revoke_consent("cns_1", later) is True
    assert await store.revoke_consent("cns_missing", later) is False
    # revoking twice keeps the first revocation time
    assert await store.revoke_consent("cns_1", later + dt.timedelta(days=1)) is True
    again = await reopen(store, db)
    try:
        got = await again.get_consent("cns_1")
        assert got is not None
        assert got.revoked_at == later
        assert got.scenes == ("library",)
        assert got.created_by == "demo-platform"
        assert got.expires_at == NOW + dt.timedelta(days=30)
    finally:
        await again.close()


async def test_duplicate_consent_id_is_refused(store: EmbeddedStore) -> None:
    await store.put_consent(consent())
    with pytest.raises(StoreUnavailable):
        await store.put_consent(consent())


# -- decisions and the audit chain ----------------------------------------------------------


async def test_record_decision_writes_audit_decision_token_and_status(
    store: EmbeddedStore, db: Path
) -> None:
    ref = await store.allocate_status()
    await store.record_decision(write("d1", ref, token("j1", ref)))
    assert await store.get_decision("d1") == (
        "demo-bank",
        {"decision_id": "d1", "outcome": "granted"},
    )
    assert await store.get_decision("d-missing") is None
    [record] = await store.audit_records(0, 10)
    assert record.seq == 1
    assert record.entry == audit("d1").as_dict()
    assert record.prev_hash == GENESIS
    assert record.hash == link_hash(GENESIS, 1, record.entry)
    [live] = await store.live_tokens("sk1", now=1_000)
    assert live == token("j1", ref)
    assert await store.live_tokens("sk1", now=2_000_000_000) == []
    assert [t.jti for t in await store.tokens_signed_by("kid-1", 1_000)] == ["j1"]
    # The token's row holds its status slot; status_entries only non-VALID entries.
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT list_id, idx, status FROM status_entries").fetchall()
    assert rows == []


async def test_a_slot_without_a_token_gets_its_own_row(store: EmbeddedStore, db: Path) -> None:
    ref = await store.allocate_status()
    await store.record_decision(write("d1", ref))
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT list_id, idx, status FROM status_entries").fetchall()
    assert rows == [(ref.list_id, ref.index, 0)]


async def test_allocated_slots_and_statuses_survive_a_restart(
    store: EmbeddedStore, db: Path
) -> None:
    refs = [await store.allocate_status() for _ in range(3)]
    for i, ref in enumerate(refs):
        await store.record_decision(write(f"d{i}", ref, token(f"j{i}", ref)))
    await store.set_status(refs[1], 1)
    again = await reopen(store, db)
    try:
        slist = again._status.lists[refs[0].list_id]
        assert {r.index for r in refs} <= slist.allocated
        assert [slist.get(r.index) for r in refs] == [0, 1, 0]
        # New tokens keep going into the same list and never reuse a taken slot.
        fresh = [await again.allocate_status() for _ in range(50)]
        assert {r.list_id for r in fresh} == {refs[0].list_id}
        assert not {r.index for r in fresh} & {r.index for r in refs}
    finally:
        await again.close()


async def test_a_failed_write_leaves_nothing_behind(store: EmbeddedStore, db: Path) -> None:
    ref = await store.allocate_status()
    await store.record_decision(write("d1", ref, token("j1", ref)))
    ref2 = await store.allocate_status()
    # same token id: the token insert fails, so the decision and audit record must not stay
    with pytest.raises(StoreUnavailable):
        await store.record_decision(write("d2", ref2, token("j1", ref2)))
    assert await store.get_decision("d2") is None
    assert [r.seq for r in await store.audit_records(0, 10)] == [1]
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM tokens").fetchone()[0]
    assert count == 1


async def test_concurrent_decisions_form_a_contiguous_chain(store: EmbeddedStore) -> None:
    await asyncio.gather(*(store.record_decision(write(f"d{i}")) for i in range(200)))
    records = await store.audit_records(0, 1000)
    assert [r.seq for r in records] == list(range(1, 201))
    assert verify_chain(records) is None
    assert {r.entry["decision_id"] for r in records} == {f"d{i}" for i in range(200)}
    for i in (0, 57, 199):
        assert await store.get_decision(f"d{i}") is not None


async def test_audit_records_pages(store: EmbeddedStore) -> None:
    await asyncio.gather(*(store.record_decision(write(f"d{i}")) for i in range(10)))
    first = await store.audit_records(0, 4)
    rest = await store.audit_records(first[-1].seq, 100)
    assert [r.seq for r in first] == [1, 2, 3, 4]
    assert [r.seq for r in rest] == list(range(5, 11))
    assert verify_chain(rest, first[-1].hash, first[-1].seq) is None


async def test_chain_continues_after_reopen(store: EmbeddedStore, db: Path) -> None:
    await asyncio.gather(*(store.record_decision(write(f"a{i}")) for i in range(3)))
    again = await reopen(store, db)
    try:
        await again.record_decision(write("b0"))
        await again.record_decision(write("b1"))
        records = await again.audit_records(0, 100)
    finally:
        await again.close()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[3].prev_hash == records[2].hash
    assert verify_chain(records) is None
    ok, message = await verify_store(url(db))
    assert ok, message
    assert "5 records" in message


async def test_verify_store_on_an_empty_store(store: EmbeddedStore, db: Path) -> None:
    await store.close()
    ok, message = await verify_store(url(db))
    assert ok
    assert "0 records" in message


async def test_verify_store_without_a_database_fails_and_creates_nothing(tmp_path: Path) -> None:
    # a mistyped path must not read as "intact", nor leave an empty state database behind
    missing = tmp_path / "typo" / "state.sqlite3"
    ok, message = await verify_store(url(missing))
    assert not ok
    assert "typo" in message
    assert not missing.exists()


async def _recorded(store: EmbeddedStore, db: Path, n: int) -> None:
    await asyncio.gather(*(store.record_decision(write(f"d{i}")) for i in range(n)))
    await store.close()


async def test_tampered_audit_entry_breaks_the_chain(store: EmbeddedStore, db: Path) -> None:
    await _recorded(store, db, 10)
    with sqlite3.connect(db) as conn:
        raw = conn.execute("SELECT entry FROM audit WHERE seq = 5").fetchone()[0]
        changed = orjson.loads(raw) | {"outcome": "standard"}
        conn.execute("UPDATE audit SET entry = ? WHERE seq = 5", (orjson.dumps(changed).decode(),))
    ok, message = await verify_store(url(db))
    assert not ok
    assert "record 5" in message


async def test_deleted_audit_record_breaks_the_chain(store: EmbeddedStore, db: Path) -> None:
    await _recorded(store, db, 10)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM audit WHERE seq = 7")
    ok, message = await verify_store(url(db))
    assert not ok
    assert "record 7" in message


async def test_rehashed_record_still_breaks_the_next_link(store: EmbeddedStore, db: Path) -> None:
    await _recorded(store, db, 10)
    with sqlite3.connect(db) as conn:
        raw, prev = conn.execute("SELECT entry, prev_hash FROM audit WHERE seq = 3").fetchone()
        entry = orjson.loads(raw) | {"partner": "someone-else"}
        conn.execute(
            "UPDATE audit SET entry = ?, hash = ? WHERE seq = 3",
            (orjson.dumps(entry).decode(), link_hash(prev, 3, entry)),
        )
    ok, message = await verify_store(url(db))
    assert not ok
    # the damage is named where it was done: record 3, edited and rehashed
    assert "record 3: edited" in message


async def test_failed_flush_fails_every_waiter_and_keeps_the_head(
    store: EmbeddedStore, db: Path
) -> None:
    await store.record_decision(write("d1"))
    head = (await store.audit_records(0, 10))[-1]
    # submitted together, these go out in one batch; "d1" again makes the batch fail
    results = await asyncio.gather(
        store.record_decision(write("d2")),
        store.record_decision(write("d1")),
        store.record_decision(write("d3")),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert await store.get_decision("d2") is None
    assert await store.get_decision("d3") is None
    await store.record_decision(write("d4"))
    records = await store.audit_records(0, 10)
    assert [r.seq for r in records] == [1, 2]
    assert records[1].prev_hash == head.hash
    assert records[1].entry["decision_id"] == "d4"
    await store.close()
    ok, message = await verify_store(url(db))
    assert ok, message


async def test_closed_store_refuses_writes(db: Path) -> None:
    s = EmbeddedStore(db)
    with pytest.raises(StoreUnavailable):
        await s.record_decision(write("d1"))
    with pytest.raises(StoreUnavailable):
        await s.check()
    await s.open()
    await s.check()
    await s.close()


# -- rate limits ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(embedded, "time", SimpleNamespace(monotonic=c, time=c))
    return c


async def test_rate_limit_allows_a_burst_then_refuses(store: EmbeddedStore, clock: Clock) -> None:
    for _ in range(5):
        assert await store.rate_limit("k", per_second=2.0, burst=5) == 0.0
    wait = await store.rate_limit("k", per_second=2.0, burst=5)
    assert wait == pytest.approx(0.5)
    # a refused request does not use up budget
    assert await store.rate_limit("k", per_second=2.0, burst=5) == pytest.approx(0.5)
    # another key has its own bucket
    assert await store.rate_limit("other", per_second=2.0, burst=5) == 0.0
    clock.now += 0.5
    assert await store.rate_limit("k", per_second=2.0, burst=5) == 0.0
    assert await store.rate_limit("k", per_second=2.0, burst=5) > 0


async def test_rate_limit_refills_at_the_rate(store: EmbeddedStore, clock: Clock) -> None:
    for _ in range(3):
        assert await store.rate_limit("k", per_second=10.0, burst=3) == 0.0
    assert await store.rate_limit("k", per_second=10.0, burst=3) > 0
    clock.now += 10  # long idle: the bucket is full again, never more than the burst
    for _ in range(3):
        assert await store.rate_limit("k", per_second=10.0, burst=3) == 0.0
    assert await store.rate_limit("k", per_second=10.0, burst=3) > 0


@pytest.mark.parametrize("start", [123_456.789, 0.3, 98_765.4321])
async def test_rate_limit_allows_the_whole_configured_burst(
    store: EmbeddedStore, clock: Clock, start: float
) -> None:
    # the partners.yaml default: 50 a second, bursts of 100; float drift must not cost one
    clock.now = start
    for _ in range(100):
        assert await store.rate_limit("k", per_second=50.0, burst=100) == 0.0
    assert await store.rate_limit("k", per_second=50.0, burst=100) == pytest.approx(0.02)


async def test_rate_limit_with_real_clock(store: EmbeddedStore) -> None:
    allowed = [await store.rate_limit("real", per_second=1.0, burst=3) for _ in range(4)]
    assert allowed[:3] == [0.0, 0.0, 0.0]
    assert 0 < allowed[3] <= 1.0


# -- token status lists ---------------------------------------------------------------------


async def test_allocate_status_gives_unique_indexes_in_range(store: EmbeddedStore) -> None:
    refs = [await store.allocate_status() for _ in range(3000)]
    assert len({r.list_id for r in refs}) == 1
    indexes = [r.index for r in refs]
    assert len(set(indexes)) == len(indexes)
    assert all(0 <= i < STATUS_LIST_SIZE for i in indexes)
    # randomly placed, not handed out in order
    assert indexes != sorted(indexes)


async def test_allocation_moves_to_a_new_list_when_half_full(store: EmbeddedStore) -> None:
    first = await store.allocate_status()
    slist = store._status.lists[first.list_id]
    slist.allocated.update(range(STATUS_LIST_SIZE // 2))
    second = await store.allocate_status()
    assert second.list_id != first.list_id


async def test_set_status_packs_two_bits_per_entry(store: EmbeddedStore, db: Path) -> None:
    ref = await store.allocate_status()
    list_id = ref.list_id
    await store.set_status(StatusRef(list_id, 5), 1)
    packed, size = await store.status_list(list_id) or (b"", 0)
    assert size == STATUS_LIST_SIZE
    assert len(packed) == STATUS_LIST_SIZE // 4
    assert packed[1] == 0b0000_0100
    await store.set_status(StatusRef(list_id, 6), 2)
    await store.set_status(StatusRef(list_id, 4), 3)
    packed, _ = await store.status_list(list_id) or (b"", 0)
    assert packed[1] == 0b0010_0111
    await store.set_status(StatusRef(list_id, 5), 0)
    packed, _ = await store.status_list(list_id) or (b"", 0)
    assert packed[1] == 0b0010_0011
    assert packed[0] == 0
    assert packed[2] == 0
    assert await store.token_status(StatusRef(list_id, 6)) == 2
    assert await store.token_status(StatusRef(list_id, 5)) == 0
    assert await store.token_status(StatusRef("unknown", 5)) == 0
    assert await store.status_list("unknown") is None
    again = await reopen(store, db)
    try:
        reloaded, _ = await again.status_list(list_id) or (b"", 0)
        assert reloaded == packed
        assert await again.token_status(StatusRef(list_id, 4)) == 3
    finally:
        await again.close()


async def test_revoked_token_status_survives_reopen(store: EmbeddedStore, db: Path) -> None:
    ref = await store.allocate_status()
    await store.record_decision(write("d1", ref, token("j1", ref)))
    await store.set_status(ref, 1)
    again = await reopen(store, db)
    try:
        assert await again.token_status(ref) == 1
        # the slot stays allocated after a restart
        assert ref.index in again._status.lists[ref.list_id].allocated
    finally:
        await again.close()


# -- replay cache and feedback ----------------------------------------------------------------


async def test_claim_once_survives_reopen(store: EmbeddedStore, db: Path) -> None:
    assert await store.claim_once("jti-1", 60) is True
    assert await store.claim_once("jti-1", 60) is False
    again = await reopen(store, db)
    try:
        assert await again.claim_once("jti-1", 60) is False
        assert await again.claim_once("jti-2", 60) is True
    finally:
        await again.close()


async def test_feedback_is_stored(store: EmbeddedStore, db: Path) -> None:
    added = await store.add_feedback(
        "d1", "demo-bank", True, {"note": "ok"}, "2025-06-01T00:00:00Z", limit=10
    )
    assert added is True
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT decision_id, partner, applied, detail FROM feedback").fetchone()
    assert row == ("d1", "demo-bank", 1, '{"note":"ok"}')


# -- commitments: the in-memory index of withholding breaches -------------------------------


async def test_breaches_are_found_after_a_close_and_after_a_reopen(
    store: EmbeddedStore, db: Path
) -> None:
    from gateway.commitments.models import Commitment
    from gateway.store.embedded.commitments import EmbeddedCommitments

    today = dt.date(2026, 6, 1)
    commitments = EmbeddedCommitments(store)
    await commitments.open()

    def made(cid: str, subject_key: str) -> Commitment:
        return Commitment(
            commitment_id=cid,
            partner="hall",
            decision_id="dec_1",
            kind="tolerant_acceptance",
            subject_kind="enterprise",
            subject_key=subject_key,
            subject="pseudonym",
            missing_materials=("营业执照副本",),
            due=today - dt.timedelta(days=1),
            created_at="2026-05-01T08:00:00+00:00",
            withhold_days=365,
        )

    short, long = made("cmt_a", "sk-1"), made("cmt_b", "sk-1")
    for c in (short, long, made("cmt_c", "sk-2")):
        assert await commitments.register(c)
    # An open commitment withholds nothing; the index starts empty.
    assert await commitments.breaches("sk-1", today) == []
    for c, days in ((short, 10), (long, 100)):
        closed = c.closed(
            status="breached",
            breach="overdue",
            closed_at="2026-06-01T00:00:00+00:00",
            withhold_until=today + dt.timedelta(days=days),
        )
        assert await commitments.close(closed, [])
    later = today + dt.timedelta(days=50)
    assert [b.commitment_id for b in await commitments.breaches("sk-1", today)] == [
        "cmt_a",
        "cmt_b",
    ]
    # The shorter breach has lapsed; the longer one still withholds.
    assert [b.commitment_id for b in await commitments.breaches("sk-1", later)] == ["cmt_b"]
    assert await commitments.breaches("sk-1", today + dt.timedelta(days=101)) == []
    assert await commitments.breaches("sk-2", today) == []
    # A restarted gateway reads the index back from the table.
    again = await reopen(store, db)
    try:
        reopened = EmbeddedCommitments(again)
        await reopened.open()
        assert [b.commitment_id for b in await reopened.breaches("sk-1", later)] == ["cmt_b"]
        assert await reopened.breaches("sk-2", today) == []
    finally:
        await again.close()

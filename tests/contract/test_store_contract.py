"""The storage protocol's contract. Every backend runs exactly these tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets

import orjson

from gateway.audit.chain import verify_chain
from gateway.store.base import Consent, Store
from tests.contract.records import NOW
from tests.contract.records import decision_write as _write


def _consent(consent_id: str, days: int = 30) -> Consent:
    return Consent(
        consent_id=consent_id,
        subject_kind="person",
        subject_key="k-" + consent_id,
        partner="demo-library",
        scenes=("library",),
        purpose="deposit_waiver",
        expires_at=NOW + dt.timedelta(days=days),
        created_at=NOW,
        created_by="demo-platform",
    )


async def test_check_answers(store: Store) -> None:
    await store.check()


async def test_consents_round_trip_and_revoke(store: Store) -> None:
    assert await store.get_consent("cns_missing") is None
    await store.put_consent(_consent("cns_a"))
    got = await store.get_consent("cns_a")
    assert got is not None
    assert got.scenes == ("library",)
    assert got.revoked_at is None
    assert got.created_by == "demo-platform"
    assert await store.revoke_consent("cns_a", NOW) is True
    revoked = await store.get_consent("cns_a")
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert await store.revoke_consent("cns_unknown", NOW) is False


async def test_rate_limit_allows_the_burst_then_refuses(store: Store) -> None:
    key = "rl-" + secrets.token_hex(4)
    waits = [await store.rate_limit(key, per_second=1.0, burst=3) for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert all(w > 0 for w in waits[3:])
    assert waits[3] <= 1.0
    # Another key has its own bucket.
    assert await store.rate_limit(key + "-other", per_second=1.0, burst=3) == 0.0


async def test_decisions_are_stored_with_a_contiguous_verified_chain(store: Store) -> None:
    writes = [_write(n) for n in range(60)]
    await asyncio.gather(*(store.record_decision(w) for w in writes))
    records = await store.audit_records(0, 1000)
    assert len(records) == 60
    assert [r.seq for r in records] == list(range(1, 61))
    assert verify_chain(records) is None
    assert {r.entry["decision_id"] for r in records} == {w.decision_id for w in writes}
    found = await store.get_decision(writes[7].decision_id)
    assert found == ("demo-bank", orjson.loads(writes[7].body))
    assert await store.get_decision("dec_missing") is None
    # Paging by sequence number.
    page = await store.audit_records(50, 5)
    assert [r.seq for r in page] == [51, 52, 53, 54, 55]


async def test_a_tampered_record_breaks_the_chain(store: Store) -> None:
    for n in range(3):
        await store.record_decision(_write(n))
    records = await store.audit_records(0, 10)
    forged = records[1].entry | {"outcome": "granted"}
    tampered = [
        records[0],
        type(records[1])(records[1].seq, forged, records[1].prev_hash, records[1].hash),
        records[2],
    ]
    assert verify_chain(tampered) is not None

"""The storage protocol's contract. Every backend runs exactly these tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
import zlib

import orjson

from gateway.audit.chain import verify_chain
from gateway.store.base import (
    AccessToken,
    AuditEntry,
    Consent,
    DecisionWrite,
    IdempotencyRecord,
    IssuedToken,
    StatusRef,
    Store,
)
from gateway.tokens.status_list import encode_list

NOW = dt.datetime.now(dt.UTC)


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


def _write(
    n: int, token: IssuedToken | None = None, status: StatusRef | None = None
) -> DecisionWrite:
    decision_id = f"dec_{n}_{secrets.token_hex(4)}"
    entry = AuditEntry(
        time=NOW.isoformat(),
        partner="demo-bank",
        staff_id=None,
        scene="loan",
        purpose="credit_loan_assessment",
        subject=f"pseudonym-{n}",
        outcome="granted" if token else "standard",
        policy="loan.credit_products@2025.1",
        policy_hash="sha256:" + "0" * 64,
        policy_set="sha256:" + "1" * 64,
        consent_id=None,
        contract="demo-bank:contract",
        decision_id=decision_id,
        token_jti=token.jti if token else None,
    )
    body = {"decision_id": decision_id, "outcome": entry.outcome, "n": n}
    return DecisionWrite(decision_id, "demo-bank", orjson.dumps(body), entry, status, token)


def _token(ref: StatusRef, subject: str, kid: str, expires: int) -> IssuedToken:
    return IssuedToken(
        jti="j" + secrets.token_hex(8),
        decision_id="dec_x",
        partner="demo-library",
        scene="library",
        purpose="deposit_waiver",
        subject_key=subject,
        kid=kid,
        status=ref,
        expires=expires,
        context={},
        benefits=("deposit_waiver",),
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


async def test_issued_tokens_are_found_by_subject_and_key(store: Store) -> None:
    ref = await store.allocate_status()
    live = _token(ref, "subject-1", "kid-a", int(time.time()) + 3600)
    expired_ref = await store.allocate_status()
    expired = _token(expired_ref, "subject-1", "kid-a", int(time.time()) - 10)
    await store.record_decision(_write(1, live, ref))
    await store.record_decision(_write(2, expired, expired_ref))
    now = int(time.time())
    by_subject = await store.live_tokens("subject-1", now)
    assert [t.jti for t in by_subject] == [live.jti]
    assert by_subject[0] == live
    assert [t.jti for t in await store.tokens_signed_by("kid-a", now)] == [live.jti]
    assert await store.live_tokens("subject-2", now) == []


async def test_status_bits_round_trip_in_the_drafts_layout(store: Store) -> None:
    refs = [await store.allocate_status() for _ in range(200)]
    assert len({(r.list_id, r.index) for r in refs}) == 200
    assert all(0 <= r.index < 131_072 for r in refs)
    ref = refs[0]
    await store.record_decision(_write(1, _token(ref, "s", "k", int(time.time()) + 60), ref))
    assert await store.token_status(ref) == 0
    await store.set_status(ref, 1)
    await store.set_status(StatusRef(ref.list_id, ref.index ^ 1), 2)
    assert await store.token_status(ref) == 1
    assert await store.token_status(StatusRef(ref.list_id, ref.index ^ 1)) == 2
    found = await store.status_list(ref.list_id)
    assert found is not None
    packed, size = found
    assert size == 131_072
    assert len(packed) == size // 4
    for index, expected in ((ref.index, 1), (ref.index ^ 1, 2)):
        assert (packed[index // 4] >> ((index % 4) * 2)) & 0b11 == expected
    assert zlib.decompress(_b64(encode_list(packed))) == packed
    assert await store.status_list("no-such-list") is None


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_replay_cache_claims_once(store: Store) -> None:
    key = "jti:demo-bank:" + secrets.token_hex(8)
    assert await store.claim_once(key, 60) is True
    assert await store.claim_once(key, 60) is False
    assert await store.claim_once(key + "x", 60) is True


async def test_access_tokens_expire(store: Store) -> None:
    live = AccessToken("demo-bank", ("loan",), time.time() + 60)
    await store.put_access_token("digest-live", live)
    assert await store.get_access_token("digest-live") == live
    await store.put_access_token(
        "digest-old", AccessToken("demo-bank", ("loan",), time.time() + 0.05)
    )
    await asyncio.sleep(0.1)
    assert await store.get_access_token("digest-old") is None
    assert await store.get_access_token("digest-missing") is None


async def test_feedback_is_kept_up_to_the_per_decision_limit(store: Store) -> None:
    write, other = _write(1), _write(2)
    await store.record_decision(write)
    await store.record_decision(other)
    at = NOW.isoformat()
    for _ in range(3):
        assert await store.add_feedback(
            write.decision_id, "demo-bank", True, {"amount_yuan": 1000}, at, limit=3
        )
    assert not await store.add_feedback(write.decision_id, "demo-bank", False, {}, at, limit=3)
    # The limit is per decision.
    assert await store.add_feedback(other.decision_id, "demo-bank", True, {}, at, limit=3)


async def test_the_feedback_limit_holds_under_concurrent_feedback(store: Store) -> None:
    write = _write(1)
    await store.record_decision(write)
    results = await asyncio.gather(
        *(
            store.add_feedback(write.decision_id, "demo-bank", True, {}, NOW.isoformat(), limit=5)
            for _ in range(20)
        )
    )
    assert results.count(True) == 5


async def test_a_decisions_idempotency_key_is_written_with_it(store: Store) -> None:
    ref = await store.allocate_status()
    token = _token(ref, "subject-i", "kid-i", int(time.time()) + 3600)
    token = IssuedToken(**{**token.as_dict(), "status": ref, "claims": {"jti": token.jti}})
    write = _write(1, token, ref)
    write = DecisionWrite(
        *[
            getattr(write, f)
            for f in ("decision_id", "partner", "body", "audit", "status", "token")
        ],
        ("demo-bank:POST:/x:k1", "fp-1"),
    )
    assert await store.get_idempotency("demo-bank:POST:/x:k1") is None
    await store.record_decision(write)
    record = await store.get_idempotency("demo-bank:POST:/x:k1")
    assert record == IdempotencyRecord("fp-1", write.decision_id, token.jti)
    stored = await store.get_token(token.jti)
    assert stored is not None
    assert stored.claims == {"jti": token.jti}
    assert await store.get_token("no-such-jti") is None


async def test_other_responses_are_kept_under_their_key(store: Store) -> None:
    record = IdempotencyRecord("fp-2", status=201, body='{"consent_id":"cns_1"}')
    await store.put_idempotency("demo-platform:POST:/v1/consents:k2", record, 60)
    assert await store.get_idempotency("demo-platform:POST:/v1/consents:k2") == record
    assert await store.get_idempotency("demo-platform:POST:/v1/consents:other") is None

"""``Store.admit``: a decision's rate limit, consent, Idempotency-Key state and the
subject's commitment breaches, on every backend.

On Redis Cluster the keys live in different slots, so this also runs the
cluster path (concurrent commands, then the claim and the breached commitments).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets

import pytest

from gateway.commitments.backend import commitment_store
from gateway.commitments.models import Commitment
from gateway.commitments.store import CommitmentStore
from gateway.errors import Forbidden
from gateway.store.admission import BreachRead, IdempotencyClaim
from gateway.store.base import Consent, IdempotencyRecord, Store
from gateway.trust.consents import ConsentService


def _consent(consent_id: str, expires_at: dt.datetime) -> Consent:
    now = dt.datetime.now(dt.UTC)
    return Consent(
        consent_id=consent_id,
        subject_kind="person",
        subject_key="k-" + consent_id,
        partner="demo-library",
        scenes=("library",),
        purpose="deposit_waiver",
        expires_at=expires_at,
        created_at=now,
    )


def _names() -> tuple[str, str, IdempotencyClaim]:
    tag = secrets.token_hex(4)
    key = f"demo-library:POST:/v1/scenes/library/decisions:k-{tag}"
    return f"rl-{tag}", f"cns_{tag}", IdempotencyClaim(key, f"idem-lock:{key}", 10)


def _check(consent_id: str, consent: Consent | None) -> Consent:
    return ConsentService.check(
        consent_id,
        consent,
        kind="person",
        subject_key="k-" + consent_id,
        partner="demo-library",
        scene="library",
        purpose="deposit_waiver",
        now=dt.datetime.now(dt.UTC),
    )


async def test_a_passing_request_gets_its_consent_and_claims_its_key(store: Store) -> None:
    bucket, consent_id, idem = _names()
    await store.put_consent(_consent(consent_id, dt.datetime.now(dt.UTC) + dt.timedelta(days=3)))
    admitted = await store.admit(bucket, 10.0, 5, consent_id=consent_id, idempotency=idem)
    assert admitted.wait_s == 0.0
    assert admitted.consent_read
    assert admitted.consent is not None
    assert _check(consent_id, admitted.consent) == admitted.consent
    assert admitted.idempotency is None
    assert admitted.claimed
    # The key is held: neither another admission nor a plain claim gets it.
    again = await store.admit(bucket, 10.0, 5, idempotency=idem)
    assert (again.wait_s, again.idempotency, again.claimed) == (0.0, None, False)
    assert await store.claim_once(idem.lock, 10) is False
    # Released (the request failed): the next one claims it.
    await store.release(idem.lock)
    assert (await store.admit(bucket, 10.0, 5, idempotency=idem)).claimed


async def test_nothing_is_asked_for_that_was_not_asked(store: Store) -> None:
    bucket, _, _ = _names()
    admitted = await store.admit(bucket, 10.0, 5)
    assert admitted.wait_s == 0.0
    assert not admitted.consent_read
    assert admitted.consent is None
    assert admitted.idempotency is None
    assert not admitted.claimed


async def test_a_rate_limited_request_claims_and_reads_nothing(store: Store) -> None:
    bucket, consent_id, idem = _names()
    await store.put_consent(_consent(consent_id, dt.datetime.now(dt.UTC) + dt.timedelta(days=3)))
    for _ in range(3):
        assert (await store.admit(bucket, 1.0, 3)).wait_s == 0.0
    limited = await store.admit(bucket, 1.0, 3, consent_id=consent_id, idempotency=idem)
    assert 0.0 < limited.wait_s <= 1.0
    assert limited.consent is None
    assert not limited.consent_read
    assert limited.idempotency is None
    assert not limited.claimed
    # The key was left alone: the first request to pass may claim it.
    assert await store.claim_once(idem.lock, 10) is True
    # admit and rate_limit take from one bucket.
    assert await store.rate_limit(bucket, 1.0, 3) > 0


async def test_a_finished_first_request_is_found_and_not_claimed(store: Store) -> None:
    bucket, _, idem = _names()
    record = IdempotencyRecord("fp-1", decision_id="dec_1", token_jti="jti-1")
    await store.put_idempotency(idem.key, record, 60)
    admitted = await store.admit(bucket, 10.0, 5, idempotency=idem)
    assert admitted.idempotency == record
    assert not admitted.claimed
    assert await store.claim_once(idem.lock, 10) is True


async def test_one_of_concurrent_requests_with_a_key_claims_it(store: Store) -> None:
    bucket, _, idem = _names()
    results = await asyncio.gather(
        *(store.admit(bucket, 100.0, 20, idempotency=idem) for _ in range(8))
    )
    assert sum(r.claimed for r in results) == 1
    assert all(r.wait_s == 0.0 and r.idempotency is None for r in results)


async def test_absent_revoked_and_expired_consents_are_refused(store: Store) -> None:
    bucket, consent_id, _ = _names()
    absent = await store.admit(bucket, 10.0, 5, consent_id=consent_id)
    assert absent.consent_read
    assert absent.consent is None
    with pytest.raises(Forbidden) as refused:
        _check(consent_id, absent.consent)
    assert refused.value.code == "consent_required"

    await store.put_consent(_consent(consent_id, dt.datetime.now(dt.UTC) + dt.timedelta(days=3)))
    await store.revoke_consent(consent_id, dt.datetime.now(dt.UTC))
    revoked = await store.admit(bucket, 10.0, 5, consent_id=consent_id)
    with pytest.raises(Forbidden) as refused:
        _check(consent_id, revoked.consent)
    assert refused.value.code == "consent_revoked"

    expiring = consent_id + "-x"
    await store.put_consent(_consent(expiring, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2)))
    await asyncio.sleep(0.3)
    # Redis has let it go; the embedded store still holds it, past its date.
    expired = await store.admit(bucket, 10.0, 5, consent_id=expiring)
    with pytest.raises(Forbidden) as refused:
        _check(expiring, expired.consent)
    assert refused.value.code == "consent_required"


TODAY = dt.date(2026, 6, 1)


async def _breached(
    commitments: CommitmentStore, subject_key: str, withhold_until: dt.date
) -> Commitment:
    """A commitment of the subject's, breached and withholding until ``withhold_until``."""
    c = Commitment(
        commitment_id="cmt_" + secrets.token_hex(6),
        partner="hall-" + secrets.token_hex(3),
        decision_id="dec_1",
        kind="tolerant_acceptance",
        subject_kind="enterprise",
        subject_key=subject_key,
        subject="pseudonym",
        missing_materials=("营业执照副本",),
        due=TODAY - dt.timedelta(days=3),
        created_at="2026-05-01T08:00:00+00:00",
        withhold_days=365,
    )
    assert await commitments.register(c)
    closed = c.closed(
        status="breached",
        breach="overdue",
        closed_at="2026-05-30T00:00:00+00:00",
        withhold_until=withhold_until,
    )
    assert await commitments.close(closed, [])
    return closed


async def test_breaches_read_with_the_admission_are_the_commitments_stores(
    store: Store,
) -> None:
    commitments = commitment_store(store)
    await commitments.open()
    subject = "sk-" + secrets.token_hex(4)
    later = await _breached(commitments, subject, TODAY + dt.timedelta(days=30))
    on_the_day = await _breached(commitments, subject, TODAY)
    await _breached(commitments, subject, TODAY - dt.timedelta(days=1))  # withholds no more
    await _breached(commitments, "sk-other-" + subject, TODAY)  # another subject's
    for day, expected in [
        (TODAY, {later.commitment_id, on_the_day.commitment_id}),
        (TODAY + dt.timedelta(days=1), {later.commitment_id}),
        (TODAY + dt.timedelta(days=31), set()),
    ]:
        bucket, _, _ = _names()
        admitted = await store.admit(
            bucket, 10.0, 5, breaches=BreachRead(subject, day, commitments.breaches)
        )
        assert admitted.wait_s == 0.0
        assert admitted.breaches is not None
        # The same commitments, in the same order, as the commitments store gives.
        assert admitted.breaches == await commitments.breaches(subject, day)
        assert {b.commitment_id for b in admitted.breaches} == expected


async def test_a_subject_without_breaches_gets_none_and_a_limited_request_reads_none(
    store: Store,
) -> None:
    commitments = commitment_store(store)
    await commitments.open()
    subject = "sk-" + secrets.token_hex(4)
    bucket, consent_id, idem = _names()
    asked = BreachRead(subject, TODAY, commitments.breaches)
    # One request a hundred seconds, two at once: the third is limited however slow the machine.
    clean = await store.admit(bucket, 0.01, 2, breaches=asked)
    assert (clean.wait_s, clean.breaches) == (0.0, [])
    # With every other part asked for too, each answer lands in its place.
    await store.put_consent(_consent(consent_id, dt.datetime.now(dt.UTC) + dt.timedelta(days=3)))
    await _breached(commitments, subject, TODAY)
    everything = await store.admit(
        bucket, 0.01, 2, consent_id=consent_id, idempotency=idem, breaches=asked
    )
    assert everything.wait_s == 0.0
    assert everything.consent is not None
    assert everything.consent.consent_id == consent_id
    assert everything.claimed
    assert everything.breaches == await commitments.breaches(subject, TODAY)
    assert everything.breaches
    limited = await store.admit(bucket, 0.01, 2, breaches=asked)
    assert limited.wait_s > 0
    assert limited.breaches is None
    # Not asked for: not read.
    assert (await store.admit(_names()[0], 10.0, 5)).breaches is None

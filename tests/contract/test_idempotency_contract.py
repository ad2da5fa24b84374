"""Idempotency records' contract: a decision's key is written with it; other responses are put."""

from __future__ import annotations

import time

from gateway.store.base import DecisionWrite, IdempotencyRecord, IssuedToken, Store
from tests.contract.records import decision_write, issued_token


async def test_a_decisions_idempotency_key_is_written_with_it(store: Store) -> None:
    ref = await store.allocate_status()
    token = issued_token(ref, "subject-i", "kid-i", int(time.time()) + 3600)
    token = IssuedToken(**{**token.as_dict(), "status": ref, "claims": {"jti": token.jti}})
    write = decision_write(1, token, ref)
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

"""Issued tokens' contract: found by subject, by signing key and by jti, on every backend."""

from __future__ import annotations

import time

from gateway.store.base import Store
from tests.contract.records import decision_write, issued_token


async def test_issued_tokens_are_found_by_subject_and_key(store: Store) -> None:
    ref = await store.allocate_status()
    live = issued_token(ref, "subject-1", "kid-a", int(time.time()) + 3600)
    expired_ref = await store.allocate_status()
    expired = issued_token(expired_ref, "subject-1", "kid-a", int(time.time()) - 10)
    await store.record_decision(decision_write(1, live, ref))
    await store.record_decision(decision_write(2, expired, expired_ref))
    now = int(time.time())
    by_subject = await store.live_tokens("subject-1", now)
    assert [t.jti for t in by_subject] == [live.jti]
    assert by_subject[0] == live
    assert [t.jti for t in await store.tokens_signed_by("kid-a", now)] == [live.jti]
    assert await store.live_tokens("subject-2", now) == []

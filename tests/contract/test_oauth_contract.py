"""OAuth's contract: a key is claimed once until released; access tokens expire."""

from __future__ import annotations

import asyncio
import secrets
import time

from gateway.store.base import AccessToken, Store


async def test_replay_cache_claims_once(store: Store) -> None:
    key = "jti:demo-bank:" + secrets.token_hex(8)
    assert await store.claim_once(key, 60) is True
    assert await store.claim_once(key, 60) is False
    assert await store.claim_once(key + "x", 60) is True


async def test_a_released_key_can_be_claimed_again(store: Store) -> None:
    # A request that held the claim and failed gives it back (the in-flight
    # idempotency lock), so its retry may claim the key again.
    key = "jti:demo-bank:" + secrets.token_hex(8)
    assert await store.claim_once(key, 60) is True
    await store.release(key)
    assert await store.claim_once(key, 60) is True
    assert await store.claim_once(key, 60) is False


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

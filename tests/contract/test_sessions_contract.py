"""Staff sessions behave alike on every backend: kept, found, expired, deleted."""

from __future__ import annotations

import asyncio
import time

from gateway.store.base import Store
from gateway.ui.sessions import Session, new_session_id, session_digest, session_store


def _session(user: str = "clerk") -> Session:
    now = time.time()
    return Session(user, "demo-service-hall", "张三", "csrf-" + user, now, now + 3600)


async def test_a_session_is_kept_found_and_deleted(store: Store) -> None:
    sessions = session_store(store)
    await sessions.open()
    await sessions.open()  # idempotent
    digest = session_digest(new_session_id())
    assert await sessions.get(digest) is None
    await sessions.put(digest, _session(), 60)
    found = await sessions.get(digest)
    assert found is not None
    assert (found.username, found.partner, found.name, found.csrf) == (
        "clerk",
        "demo-service-hall",
        "张三",
        "csrf-clerk",
    )
    await sessions.delete(digest)
    assert await sessions.get(digest) is None
    await sessions.delete(digest)  # deleting twice is harmless


async def test_sessions_are_apart_and_a_refresh_replaces(store: Store) -> None:
    sessions = session_store(store)
    await sessions.open()
    a, b = session_digest(new_session_id()), session_digest(new_session_id())
    await sessions.put(a, _session("a"), 60)
    await sessions.put(b, _session("b"), 60)
    await sessions.put(a, _session("a2"), 60)
    got_a, got_b = await sessions.get(a), await sessions.get(b)
    assert got_a is not None
    assert got_a.username == "a2"
    assert got_b is not None
    assert got_b.username == "b"


async def test_a_session_ends_with_its_ttl(store: Store) -> None:
    sessions = session_store(store)
    await sessions.open()
    digest = session_digest(new_session_id())
    await sessions.put(digest, _session(), 0.2)
    assert await sessions.get(digest) is not None
    await asyncio.sleep(0.4)
    assert await sessions.get(digest) is None

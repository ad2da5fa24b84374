"""The audit tree builder's lease on every backend: one holder at a time, until it lapses.

Two tree stores on one store stand for two replicas. Times are generous (the
machine may be busy): a renewal comes at 60% of the lease's lifetime, and the
lease is called lapsed only well after its end.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.audit.log import AuditLog
from gateway.audit.store import audit_tree_store
from gateway.store.base import Store
from gateway.tokens.keys import KeyRing

TTL_MS = 1_500


async def test_only_the_holder_takes_and_renews_the_lease(store: Store) -> None:
    a, b = audit_tree_store(store), audit_tree_store(store)
    assert await a.take_builder_lease("replica-a", TTL_MS)
    assert not await b.take_builder_lease("replica-b", TTL_MS)
    # Renewed by its holder twice, each time before it would have lapsed: past the
    # first lease's end the other replica is still refused.
    for _ in range(2):
        await asyncio.sleep(0.9)
        assert await a.take_builder_lease("replica-a", TTL_MS)
        assert not await b.take_builder_lease("replica-b", TTL_MS)


async def test_a_lapsed_lease_is_taken_over_and_the_old_holder_refused(store: Store) -> None:
    a, b = audit_tree_store(store), audit_tree_store(store)
    assert await a.take_builder_lease("replica-a", TTL_MS)
    await asyncio.sleep(TTL_MS / 1000 + 0.5)  # replica A stopped renewing
    assert await b.take_builder_lease("replica-b", TTL_MS)
    assert not await a.take_builder_lease("replica-a", TTL_MS)
    # A's late release must not drop B's lease.
    await a.release_builder_lease("replica-a")
    assert not await a.take_builder_lease("replica-a", TTL_MS)


async def test_a_released_lease_is_free_at_once(store: Store) -> None:
    a, b = audit_tree_store(store), audit_tree_store(store)
    assert await a.take_builder_lease("replica-a", 60_000)
    await a.release_builder_lease("replica-a")
    assert await b.take_builder_lease("replica-b", 60_000)
    await b.release_builder_lease("replica-b")


async def test_of_two_audit_logs_one_holds_the_lease_and_a_clean_close_hands_it_over(
    store: Store, tmp_path: Path
) -> None:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    first, second = (
        AuditLog(store, audit_tree_store(store), lambda: ring, origin="test.example/audit")
        for _ in range(2)
    )
    assert await first.lease.hold()
    assert not await second.lease.hold()
    assert first.lease.held
    assert not second.lease.held
    await first.close()  # gives the lease up: no wait for it to lapse
    assert not first.lease.held
    assert await second.lease.hold()
    await second.close()

"""Feedback's contract: kept up to the per-decision limit, also under concurrent posts."""

from __future__ import annotations

import asyncio

from gateway.store.base import Store
from tests.contract.records import NOW, decision_write


async def test_feedback_is_kept_up_to_the_per_decision_limit(store: Store) -> None:
    write, other = decision_write(1), decision_write(2)
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
    write = decision_write(1)
    await store.record_decision(write)
    results = await asyncio.gather(
        *(
            store.add_feedback(write.decision_id, "demo-bank", True, {}, NOW.isoformat(), limit=5)
            for _ in range(20)
        )
    )
    assert results.count(True) == 5

"""The restorations store contract, on every backend (embedded, Redis, Redis Cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.restorations.backends import restorations_for
from gateway.restorations.store import ConstraintLink, RestorationStore
from gateway.store.base import Store


@pytest.fixture
async def restorations(store: Store) -> AsyncIterator[RestorationStore]:
    backend = restorations_for(store)
    await backend.open()
    yield backend
    await backend.close()


def _link(decision_id: str, scene: str = "loan") -> ConstraintLink:
    return ConstraintLink(
        decision_id, "bank-1", scene, ("loan.restrict_credit",), "2026-01-02T03:04:05+00:00"
    )


async def test_a_restored_record_logs_each_linked_decision_once(
    restorations: RestorationStore,
) -> None:
    await restorations.link("subj-a", ["rec-1", "rec-2"], _link("dec_1"))
    await restorations.link("subj-a", ["rec-1"], _link("dec_2", "tax"))
    await restorations.link("subj-b", ["rec-1"], _link("dec_3"))  # same record id, other subject

    moved = await restorations.restore("subj-a", "rec-1", "repaired", "2026-02-01T00:00:00+00:00")
    assert [(r.link.decision_id, r.record_id, r.event) for r in moved] == [
        ("dec_1", "rec-1", "repaired"),
        ("dec_2", "rec-1", "repaired"),
    ]
    assert moved[1].link == _link("dec_2", "tax")
    assert await restorations.restore("subj-a", "rec-1", "repaired", "2026-02-02") == []

    log = await restorations.restorations(None, 100)
    assert [r.as_json() for r in log] == [r.as_json() for r in moved]
    # the other record of dec_1 and the other subject's record are still linked
    later = await restorations.restore("subj-a", "rec-2", "delisted", "2026-03-01")
    assert [r.link.decision_id for r in later] == ["dec_1"]
    other = await restorations.restore("subj-b", "rec-1", "objection_upheld", "2026-03-02")
    assert [r.link.decision_id for r in other] == ["dec_3"]


async def test_the_log_pages_by_cursor(restorations: RestorationStore) -> None:
    for i in range(5):
        await restorations.link("s", [f"r{i}"], _link(f"dec_{i}"))
        await restorations.restore("s", f"r{i}", "repaired", f"2026-01-0{i + 1}")
    first = await restorations.restorations(None, 2)
    second = await restorations.restorations(first[-1].cursor, 2)
    third = await restorations.restorations(second[-1].cursor, 2)
    assert [r.link.decision_id for r in first + second + third] == [f"dec_{i}" for i in range(5)]
    assert await restorations.restorations(third[-1].cursor, 2) == []
    with pytest.raises(ValueError, match="cursor"):
        await restorations.restorations("not a cursor", 2)


async def test_concurrent_restores_of_one_record_log_it_once(
    restorations: RestorationStore,
) -> None:
    # two replicas taking the same event at once
    await restorations.link("s", ["r"], _link("dec_x"))
    results = await asyncio.gather(
        *(restorations.restore("s", "r", "repaired", "2026-01-01") for _ in range(4))
    )
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert [r.link.decision_id for r in await restorations.restorations(None, 10)] == ["dec_x"]

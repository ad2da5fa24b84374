"""loan_response_overdue: each (demand, bank) pair is announced once, by one replica."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.loans.overdue import notify_overdue
from gateway.loans.stats import OverduePair
from gateway.store.embedded import EmbeddedStore

PAIRS = [
    OverduePair("dem_1", "demo-bank", 1_700_000_000, "demo-platform"),
    OverduePair("dem_1", "demo-bank-2", 1_700_000_000, "demo-platform"),
]


async def test_two_replicas_scanning_one_store_announce_each_pair_once(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "state.sqlite3")
    await store.open()
    asked: list[tuple[int, int | None]] = []
    sent: list[tuple[str, dict[str, Any], list[str]]] = []

    async def overdue(now: int, since: int | None) -> list[OverduePair]:
        asked.append((now, since))
        return PAIRS

    async def emit(kind: str, data: dict[str, Any], *, audience: Any) -> int:
        sent.append((kind, dict(data), list(audience)))
        return 1

    try:
        # Two replicas' passes over the same window, through the one shared claim.
        first = await notify_overdue(overdue, store.claim_once, emit, 1_700_100_000, 1_699_000_000)
        second = await notify_overdue(overdue, store.claim_once, emit, 1_700_100_000, 1_699_000_000)
    finally:
        await store.close()
    assert (first, second) == (2, 0)
    assert asked == [(1_700_100_000, 1_699_000_000)] * 2
    assert [(k, d["demand_id"], d["bank"], a) for k, d, a in sent] == [
        ("loan_response_overdue", "dem_1", "demo-bank", ["demo-bank", "demo-platform"]),
        ("loan_response_overdue", "dem_1", "demo-bank-2", ["demo-bank-2", "demo-platform"]),
    ]
    assert sent[0][1]["deadline"] == "2023-11-14T22:13:20+00:00"

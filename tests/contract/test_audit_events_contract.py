"""Records that are not decisions share the decisions' chain on every backend."""

from __future__ import annotations

import asyncio

from gateway.audit.chain import verify_chain
from gateway.ids import ordered_id
from gateway.store.base import AuditEvent, Store
from tests.contract.test_store_contract import _write


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        kind="consent_recorded",
        time="2026-12-04T00:00:00Z",
        partner="demo-platform",
        record_id=ordered_id("rec_"),
        scene="library",
        purpose="deposit_waiver",
        subject=f"pseudonym-{n}",
        detail={"consent_id": f"c{n}"},
    )


async def test_events_and_decisions_interleave_on_one_verified_chain(store: Store) -> None:
    events = [_event(n) for n in range(20)]
    decisions = [_write(n) for n in range(20)]
    await asyncio.gather(
        *(store.append_audit(e) for e in events),
        *(store.record_decision(w) for w in decisions),
    )
    records = await store.audit_records(0, 100)
    assert [r.seq for r in records] == list(range(1, 41))
    assert verify_chain(records) is None
    kinds = [r.entry.get("kind") for r in records]
    assert kinds.count("consent_recorded") == 20
    assert {r.entry["record_id"] for r in records if "record_id" in r.entry} == {
        e.record_id for e in events
    }


async def test_an_event_is_not_a_decision(store: Store) -> None:
    event = _event(1)
    await store.append_audit(event)
    assert await store.get_decision(event.record_id) is None

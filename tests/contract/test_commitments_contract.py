"""The commitments contract on every backend: register, list by due date, close once."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets

from adapters.delivery.base import OutboundEvent
from gateway.commitments.backend import commitment_store
from gateway.commitments.models import Commitment
from gateway.outbox.backend import outbox_store
from gateway.outbox.models import OutboxItem
from gateway.store.base import Store

TODAY = dt.date(2026, 6, 1)


def _commitment(partner: str, due: dt.date, subject_key: str = "sk-1", **kw: object) -> Commitment:
    fields: dict[str, object] = {
        "commitment_id": "cmt_" + secrets.token_hex(6),
        "partner": partner,
        "decision_id": "dec_1",
        "kind": "tolerant_acceptance",
        "subject_kind": "enterprise",
        "subject_key": subject_key,
        "subject": "pseudonym",
        "missing_materials": ("营业执照副本",),
        "due": due,
        "created_at": "2026-05-01T08:00:00+00:00",
        "withhold_days": 365,
    }
    return Commitment(**{**fields, **kw})  # type: ignore[arg-type]


def _event(c: Commitment) -> OutboxItem:
    event = OutboundEvent(
        "evt_" + c.commitment_id,
        "commitment_breached",
        "2026-06-01T00:00:00+00:00",
        c.partner,
        {"commitment_id": c.commitment_id},
    )
    return OutboxItem.make(event, "webhook")


async def test_register_get_and_list_by_due_date(store: Store) -> None:
    commitments = commitment_store(store)
    await commitments.open()
    hall = "hall-" + secrets.token_hex(3)
    made = [_commitment(hall, TODAY + dt.timedelta(days=d)) for d in (9, 3, 6, 3)]
    for c in made:
        assert await commitments.register(c)
    assert not await commitments.register(made[0])
    assert await commitments.get(made[1].commitment_id) == made[1]
    listed = await commitments.list_for(hall, None, None, None, 10)
    assert [c.due for c in listed] == sorted(c.due for c in made)
    page = await commitments.list_for(hall, None, None, None, 2)
    rest = await commitments.list_for(hall, None, None, page[-1].member, 10)
    assert [c.commitment_id for c in page + rest] == [c.commitment_id for c in listed]
    before = await commitments.list_for(hall, "open", TODAY + dt.timedelta(days=6), None, 10)
    assert {c.due for c in before} == {TODAY + dt.timedelta(days=3)}
    assert await commitments.list_for("another-hall", None, None, None, 10) == []
    assert (await commitments.counts(hall))["tolerant_acceptance:open"] == 4


async def test_a_commitment_closes_once_with_its_events(store: Store) -> None:
    commitments = commitment_store(store)
    outbox = outbox_store(store)
    await commitments.open()
    await outbox.open()
    hall = "hall-" + secrets.token_hex(3)
    subject = "sk-" + secrets.token_hex(4)
    c = _commitment(hall, TODAY - dt.timedelta(days=1), subject)
    await commitments.register(c)
    assert [o.commitment_id for o in await commitments.overdue(TODAY, 10) if o.partner == hall] == [
        c.commitment_id
    ]
    breached = c.closed(
        status="breached",
        breach="overdue",
        closed_at="2026-06-01T00:00:00+00:00",
        withhold_until=TODAY + dt.timedelta(days=365),
    )
    # Two replicas sweeping at once: one closes it and queues its event.
    results = await asyncio.gather(
        commitments.close(breached, [_event(c)]), commitments.close(breached, [_event(c)])
    )
    assert sorted(results) == [False, True]
    assert (await commitments.get(c.commitment_id)) == breached
    assert [o for o in await commitments.overdue(TODAY, 10) if o.partner == hall] == []
    claimed = [i for i in await outbox.claim(60, 100) if i.partner == hall]
    assert [i.event.data["commitment_id"] for i in claimed] == [c.commitment_id]
    assert [b.commitment_id for b in await commitments.breaches(subject, TODAY)] == [
        c.commitment_id
    ]
    # The breach withholds until its day, not after.
    assert await commitments.breaches(subject, TODAY + dt.timedelta(days=366)) == []
    assert await commitments.list_for(hall, "open", None, None, 10) == []
    assert [x.status for x in await commitments.list_for(hall, "breached", None, None, 10)] == [
        "breached"
    ]
    counts = await commitments.counts(hall)
    assert counts["tolerant_acceptance:breached"] == 1
    assert counts.get("tolerant_acceptance:open", 0) == 0


async def test_a_fulfilled_commitment_is_not_breached(store: Store) -> None:
    commitments = commitment_store(store)
    await commitments.open()
    hall = "hall-" + secrets.token_hex(3)
    c = _commitment(hall, TODAY - dt.timedelta(days=1))
    await commitments.register(c)
    fulfilled = c.closed(status="fulfilled", closed_at="2026-05-30T00:00:00+00:00")
    assert await commitments.close(fulfilled, [])
    breached = c.closed(status="breached", breach="overdue", withhold_until=TODAY)
    assert not await commitments.close(breached, [_event(c)])
    assert (await commitments.get(c.commitment_id)) == fulfilled
    assert await commitments.breaches(c.subject_key, TODAY) == []

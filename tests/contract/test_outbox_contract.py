"""The outbox contract on every backend: queue, claim under a lease, ack, fail, dead-letter."""

from __future__ import annotations

import asyncio

from adapters.delivery.base import OutboundEvent
from gateway.outbox.backend import outbox_store
from gateway.outbox.models import OutboxItem
from gateway.store.base import Store


def _item(n: int, partner: str = "hall") -> OutboxItem:
    event = OutboundEvent(
        f"evt_{n:04d}",
        "commitment_breached",
        "2026-01-01T00:00:00+00:00",
        partner,
        {"commitment_id": f"cmt_{n}"},
    )
    return OutboxItem.make(event, "webhook")


async def test_queued_items_are_claimed_once_until_the_lease_passes(store: Store) -> None:
    outbox = outbox_store(store)
    await outbox.open()
    await outbox.add([_item(1), _item(2)])
    await outbox.add([_item(1)])  # a repeated add queues nothing twice
    first = await outbox.claim(lease_s=60, limit=10)
    assert sorted(i.event.event_id for i in first) == ["evt_0001", "evt_0002"]
    assert first[0].event.data["commitment_id"].startswith("cmt_")
    assert await outbox.claim(lease_s=60, limit=10) == []  # leased: nobody else gets them
    await outbox.ack([first[0].item_id])
    pending = await outbox.items("pending", 10)
    assert [i.item_id for i in pending] == [first[1].item_id]


async def test_an_expired_lease_makes_the_item_due_again(store: Store) -> None:
    outbox = outbox_store(store)
    await outbox.open()
    await outbox.add([_item(3)])
    assert len(await outbox.claim(lease_s=0.05, limit=10)) == 1
    for _ in range(100):
        again = await outbox.claim(lease_s=60, limit=10)
        if again:
            break
        await asyncio.sleep(0.02)
    assert [i.event.event_id for i in again] == ["evt_0003"]


async def test_concurrent_claims_share_nothing(store: Store) -> None:
    outbox = outbox_store(store)
    await outbox.open()
    await outbox.add([_item(n) for n in range(10, 40)])
    batches = await asyncio.gather(*(outbox.claim(60, 7) for _ in range(6)))
    ids = [i.item_id for batch in batches for i in batch]
    assert len(ids) == 30
    assert len(set(ids)) == 30


async def test_failures_back_off_then_dead_letter_and_retry(store: Store) -> None:
    outbox = outbox_store(store)
    await outbox.open()
    await outbox.add([_item(5)])
    (item,) = await outbox.claim(60, 10)
    failed = OutboxItem(item.item_id, item.delivery, item.event, item.attempts + 1)
    await outbox.fail(failed, delay_s=3600, error="HTTP 500", dead=False)
    assert await outbox.claim(60, 10) == []  # backing off
    (waiting,) = await outbox.items("pending", 10)
    assert waiting.attempts == 1
    assert waiting.last_error == "HTTP 500"
    await outbox.fail(waiting, delay_s=0, error="HTTP 500", dead=True)
    assert await outbox.items("pending", 10) == []
    (dead,) = await outbox.items("dead", 10)
    assert dead.state == "dead"
    assert await outbox.claim(60, 10) == []
    assert await outbox.retry(dead.item_id) == 1
    (again,) = await outbox.claim(60, 10)
    assert again.attempts == 0
    assert again.event == item.event
    await outbox.ack([again.item_id])
    assert await outbox.items("pending", 10) == []
    assert await outbox.items("dead", 10) == []


async def test_retry_all_moves_every_dead_item(store: Store) -> None:
    outbox = outbox_store(store)
    await outbox.open()
    await outbox.add([_item(7), _item(8)])
    for item in await outbox.claim(60, 10):
        await outbox.fail(item, 0, "gone", dead=True)
    assert await outbox.retry(None) == 2
    assert len(await outbox.claim(60, 10)) == 2

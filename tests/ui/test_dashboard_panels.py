"""Dashboard panels for the outbox, the latest signed checkpoint and loan responses."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from adapters.delivery.base import OutboundEvent
from gateway.outbox.models import OutboxItem
from tests.conftest import Demo
from tests.ui.conftest import sign_in


async def _dashboard(demo: Demo) -> str:
    await sign_in(demo, "operator")
    page = await demo.client.get("/ui/dashboard")
    assert page.status == 200
    return await page.text()


def _item(n: int) -> OutboxItem:
    event = OutboundEvent(f"evt_{n}", "commitment_fulfilled", "2026-01-01T00:00:00Z", "p", {})
    # due in an hour, so the running dispatcher leaves it where the test put it
    return OutboxItem(f"itm_{n}", "hook", event, next_at=time.time() + 3600)


async def test_the_outbox_panel_counts_waiting_items_and_dead_letters(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app's own dispatcher would claim the items meanwhile: hold it still.
    async def idle() -> int:
        return 0

    monkeypatch.setattr(demo.gateway.dispatcher, "run_once", idle)
    store = demo.gateway.dispatcher.store
    await store.add([_item(1), _item(2), _item(3)])
    dead = _item(3)
    await store.fail(dead, 3600, "gone", dead=True)
    html = await _dashboard(demo)
    pending = re.search(r'<tr id="outbox-pending">.*?</tr>', html, re.S)
    dead_row = re.search(r'<tr id="outbox-dead" class="overdue">.*?</tr>', html, re.S)
    assert pending
    assert dead_row
    assert '<td class="num">2</td>' in pending.group(0)
    assert "commitment_fulfilled: 2" in pending.group(0)
    assert '<td class="num">1</td>' in dead_row.group(0)


async def test_the_checkpoint_panel_verifies_the_latest_checkpoint(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    assert (await demo.decide(subject, "library")).status == 200
    size, _ = await demo.gateway.audit.checkpoint_now()
    assert (await demo.decide(subject, "library")).status == 200  # one record after it
    html = await _dashboard(demo)
    assert f'<dd class="num" id="checkpoint-size">{size}</dd>' in html
    assert re.search(r'id="checkpoint-check" class="good">\s*通过', html)
    assert "其后 1 条记录链接完好" in html


async def test_an_edited_record_after_the_checkpoint_fails_the_check(demo: Demo) -> None:
    subject = demo.subject("person", {"library": "granted"})
    assert (await demo.decide(subject, "library")).status == 200
    size, _ = await demo.gateway.audit.checkpoint_now()
    assert (await demo.decide(subject, "library")).status == 200
    # tamper with the record after the checkpoint in the embedded store's file
    conn = demo.gateway.store.reader  # type: ignore[attr-defined]
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    with sqlite3.connect(path) as writer:
        writer.execute(
            "UPDATE audit SET entry = replace(entry, 'granted', 'standard') WHERE seq = ?",
            (size + 1,),
        )
    html = await _dashboard(demo)
    assert re.search(r'id="checkpoint-check" class="bad">\s*未通过', html)
    assert f"record {size + 1} does not link" in html


async def test_no_checkpoint_yet(demo: Demo) -> None:
    html = await _dashboard(demo)
    if "checkpoint-size" not in html:  # the demo's start may have signed one already
        assert "尚无签名检查点" in html


async def test_the_loan_panel_shows_each_banks_responses(demo: Demo) -> None:
    html = await _dashboard(demo)
    banks = sorted(p.id for p in demo.gateway.partners.by_id.values() if p.kind == "bank")
    assert banks
    for bank in banks:
        assert f'<tr id="loan-stats-{bank}">' in html

"""Operators see dead letters and put them back: `xinyi-gateway outbox list|retry`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.delivery.base import OutboundEvent
from gateway.cli import main
from gateway.outbox.models import OutboxItem
from gateway.store.embedded import EmbeddedStore
from gateway.store.embedded.outbox import EmbeddedOutbox


async def _dead_letter(state: Path) -> OutboxItem:
    store = EmbeddedStore(state / "state.sqlite3")
    await store.open()
    try:
        outbox = EmbeddedOutbox(store)
        await outbox.open()
        event = OutboundEvent("evt_cli", "token_revoked", "2026-01-01T00:00:00+00:00", "hall", {})
        await outbox.add([OutboxItem.make(event, "webhook")])
        (item,) = await outbox.claim(60, 10)
        failed = OutboxItem(item.item_id, item.delivery, item.event, 12)
        await outbox.fail(failed, 0, "the receiver answered HTTP 410", dead=True)
        return item
    finally:
        await store.close()


def test_list_and_retry_dead_letters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    item = asyncio.run(_dead_letter(tmp_path))
    state = ["--state-dir", str(tmp_path)]
    assert main(["outbox", "list", "--dead", *state]) == 0
    out = capsys.readouterr().out
    assert "dead: 1" in out
    assert item.item_id in out
    assert "HTTP 410" in out
    assert main(["outbox", "list", *state]) == 0
    assert "pending: 0" in capsys.readouterr().out
    assert main(["outbox", "retry", item.item_id, *state]) == 0
    assert "requeued: 1" in capsys.readouterr().out
    assert main(["outbox", "list", *state]) == 0
    out = capsys.readouterr().out
    assert "pending: 1" in out
    assert "attempts 0" in out
    assert main(["outbox", "retry", *state]) == 2  # neither an id nor --all-dead

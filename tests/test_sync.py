"""ReplicaSync's bookkeeping: expected messages apply narrowly, gaps and lost ones broadly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import sync as sync_module
from gateway.store.changes import Change, ChangeFeed, Topic
from gateway.sync import ReplicaSync


class ScriptedFeed(ChangeFeed):
    """Another replica's announcements, some of whose messages never arrive."""

    def __init__(self) -> None:
        self.counters = dict.fromkeys(Topic, 0)
        self.queue: asyncio.Queue[Change] = asyncio.Queue()

    def other_replica(self, topic: Topic, key: str = "", *, delivered: bool = True) -> None:
        self.counters[topic] += 1
        if delivered:
            self.queue.put_nowait(Change(topic, self.counters[topic], key, "other"))

    async def announce(self, topic: Topic, key: str = "") -> int:
        self.counters[topic] += 1
        return self.counters[topic]

    async def generations(self) -> dict[Topic, int]:
        return dict(self.counters)

    async def listen(self) -> AsyncIterator[Change]:
        while True:
            yield await self.queue.get()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> tuple[ReplicaSync, ScriptedFeed, list[Any]]:
    monkeypatch.setattr(sync_module, "RECHECK_S", 0.01)
    applied: list[Any] = []
    feed = ScriptedFeed()
    gateway = SimpleNamespace(
        store=SimpleNamespace(change_feed=lambda origin: feed),
        pipeline=SimpleNamespace(forget_records=lambda key: applied.append(("records", key))),
        loans=SimpleNamespace(forget=lambda key: applied.append(("loans", key))),
        reload_policies=lambda: applied.append(("policies",)),
        reload_keys=lambda: applied.append(("keys",)),
        status_cache=SimpleNamespace(clear=lambda: applied.append(("status",))),
    )
    return ReplicaSync(gateway), feed, applied  # type: ignore[arg-type]


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.005)


async def test_an_expected_message_evicts_one_subject(world: Any) -> None:
    sync, feed, applied = world
    await sync.start()
    feed.other_replica(Topic.RECORDS, "subject-key-1")
    await _settle()
    await sync.stop()
    assert applied == [("records", "subject-key-1"), ("loans", "subject-key-1")]


async def test_a_lost_message_is_applied_broadly_by_the_recheck(world: Any) -> None:
    sync, feed, applied = world
    await sync.start()
    feed.other_replica(Topic.RECORDS, "subject-key-1", delivered=False)
    feed.other_replica(Topic.POLICIES, delivered=False)
    await _settle()
    await sync.stop()
    assert ("records", None) in applied
    assert ("policies",) in applied
    assert ("records", "subject-key-1") not in applied


async def test_a_message_after_a_gap_applies_broadly_and_once(world: Any) -> None:
    sync, feed, applied = world
    sync_module.RECHECK_S = 60  # only the listener may act here
    await sync.start()
    feed.other_replica(Topic.KEYS, delivered=False)
    feed.other_replica(Topic.KEYS)
    await _settle()
    await sync.stop()
    assert applied == [("keys",)]


async def test_own_announcements_are_not_applied_again(world: Any) -> None:
    sync, _feed, applied = world
    await sync.start()
    await sync.announce(Topic.STATUS)
    await _settle()
    await sync.stop()
    assert applied == []

"""The record-change feed on every backend: what one replica publishes, the others read."""

from __future__ import annotations

import asyncio

from gateway.facts.cache import RecordCache
from gateway.facts.changes import LocalChanges, record_changes_for, watch
from gateway.store.base import Store
from gateway.store.embedded import EmbeddedStore


async def test_a_reader_hears_what_was_published_after_it_started(store: Store) -> None:
    changes = record_changes_for(store)
    if isinstance(store, EmbeddedStore):
        # one process: the replica taking the event forgets the records itself
        assert isinstance(changes, LocalChanges)
        await changes.publish("k")
        assert await changes.read(None) == (None, [])
        return
    await changes.publish("before-start")
    cursor, keys = await changes.read(None)  # starts at the end of the feed
    assert keys == []
    for key in ("s1", "s2", "s1"):
        await changes.publish(key)
    cursor, keys = await changes.read(cursor)
    assert keys == ["s1", "s2", "s1"]
    assert await changes.read(cursor) == (cursor, [])


async def test_the_watcher_forgets_cached_records_of_changed_subjects(store: Store) -> None:
    changes = record_changes_for(store)
    if isinstance(store, EmbeddedStore):
        return  # nothing to watch in one process
    cache = RecordCache(ttl_seconds=3600, max_entries=10)
    cache.put("person", "id-1", [], "key-1")
    cache.put("person", "id-2", [], "key-2")
    start, _ = await changes.read(None)
    task = asyncio.create_task(watch(changes, cache.forget_subject_key, start))
    try:
        await changes.publish("key-1")
        for _ in range(100):
            if cache.get("person", "id-1") is None:
                break
            await asyncio.sleep(0.05)
        assert cache.get("person", "id-1") is None
        assert cache.get("person", "id-2") == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

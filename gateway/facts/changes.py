"""Record changes every replica hears of: a credit event at one replica empties
the subject's cached records at all of them, not after the cache's TTL.

The replica that takes the event forgets the subject's records itself; it also
publishes the subject's internal pseudonym (never its id), and every replica's
watcher forgets the records of each subject it reads from the feed. With the
embedded store there is one process, so there is nothing to publish.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

from gateway.store.base import Store

__all__ = ["LocalChanges", "RecordChanges", "record_changes_for", "watch"]

log = logging.getLogger("xinyi.changes")

# How often a replica reads the feed: the longest another replica may still
# decide on records a credit event has changed.
POLL_SECONDS = 0.2


class RecordChanges(ABC):
    @abstractmethod
    async def publish(self, subject_key: str) -> None:
        """Tell every replica that this subject's records changed."""

    @abstractmethod
    async def read(self, cursor: str | None) -> tuple[str | None, list[str]]:
        """Subjects changed after ``cursor`` and the cursor to read on from.

        ``None`` starts at the end of the feed: a replica that starts has an
        empty cache and needs nothing older.
        """


class LocalChanges(RecordChanges):
    """One process: the replica that takes an event is the only one."""

    async def publish(self, subject_key: str) -> None:
        return None

    async def read(self, cursor: str | None) -> tuple[str | None, list[str]]:
        return cursor, []


def record_changes_for(store: Store) -> RecordChanges:
    from gateway.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from gateway.store.redis_changes import RedisChanges

        return RedisChanges(store)
    return LocalChanges()


async def watch(
    changes: RecordChanges, forget: Callable[[str], None], cursor: str | None = None
) -> None:
    """Read the feed until cancelled, forgetting each changed subject's records.

    ``cursor`` is where to start (default: the end of the feed when first read).
    """
    if isinstance(changes, LocalChanges):
        return
    while True:
        try:
            cursor, keys = await changes.read(cursor)
            for key in keys:
                forget(key)
        except Exception as exc:
            # The store is away: cached records live out their TTL meanwhile.
            log.warning("record change feed unreadable", extra={"error": type(exc).__name__})
        await asyncio.sleep(POLL_SECONDS)

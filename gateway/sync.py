"""Keeping replicas in step (issue 14.5): what one replica changes, the others apply.

Three kinds of state live in each replica's memory and must not drift: a
subject's cached credit records, the policy set, and the key ring (with the
status lists signed by it). The replica that changes one announces it on the
store's change feed; every other replica applies it as the message arrives and,
because a pub/sub message can be lost, also re-reads the feed's generation
counters every ``RECHECK_S`` and applies broadly whatever moved unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from gateway.ids import ordered_id
from gateway.store.base import StoreUnavailable
from gateway.store.changes import Change, ChangeFeed, Topic

if TYPE_CHECKING:
    from gateway.runtime import Gateway

__all__ = ["RECHECK_S", "ReplicaSync"]

log = logging.getLogger("xinyi.sync")

# How often the generation counters are re-read: the bound on staleness when
# a message is lost (a delivered message applies at once).
RECHECK_S = 0.5


class ReplicaSync:
    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway
        self.origin = ordered_id("replica_")
        self.feed: ChangeFeed = gateway.store.change_feed(self.origin)
        self._seen: dict[Topic, int] = dict.fromkeys(Topic, 0)
        self._tasks: list[asyncio.Task[None]] = []

    # -- this replica's changes ------------------------------------------------------------
    async def announce(self, topic: Topic, key: str = "") -> None:
        """Tell the other replicas; a store outage here must not undo the local change."""
        try:
            generation = await self.feed.announce(topic, key)
        except StoreUnavailable:
            log.warning("could not announce a change; replicas catch up on re-check")
            return
        # Our own change is applied already; a gap means another replica's
        # change slipped in between, which the re-check will apply broadly.
        if generation == self._seen[topic] + 1:
            self._seen[topic] = generation

    # -- the other replicas' changes ----------------------------------------------------------
    async def start(self) -> None:
        try:
            self._seen = await self.feed.generations()
        except StoreUnavailable:
            log.warning("change feed not readable at start; the re-check will catch up")
        self._tasks = [
            asyncio.create_task(self._listen(), name="xinyi-sync-listen"),
            asyncio.create_task(self._recheck(), name="xinyi-sync-recheck"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _listen(self) -> None:
        changes: AsyncIterator[Change] = self.feed.listen()
        async for change in changes:
            expected = self._seen[change.topic] + 1
            if change.generation < expected:
                continue  # applied already, broadly, by a re-check
            if change.generation == expected:
                self._apply(change.topic, change.key)
            else:
                self._apply(change.topic, None)
            self._seen[change.topic] = change.generation

    async def _recheck(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_S)
            try:
                current = await self.feed.generations()
            except StoreUnavailable:
                continue
            for topic, generation in current.items():
                if generation > self._seen[topic]:
                    log.info("applying a change announced while unheard", extra={"topic": topic})
                    self._apply(topic, None)
                    self._seen[topic] = generation

    def _apply(self, topic: Topic, key: str | None) -> None:
        """Apply one change; ``key`` None means "something changed": apply it whole."""
        handlers: dict[Topic, Callable[[], None]] = {
            Topic.RECORDS: lambda: self._forget_records(key or None),
            Topic.POLICIES: self._reload_policies,
            Topic.KEYS: self._reload_keys,
            Topic.STATUS: self._gw.status_cache.clear,
        }
        handlers[topic]()

    def _forget_records(self, subject_key: str | None) -> None:
        # Both caches of record-derived state: the decision path's and 名单推荐's.
        self._gw.pipeline.forget_records(subject_key)
        self._gw.loans.forget(subject_key)

    def _reload_policies(self) -> None:
        self._gw.reload_policies()

    def _reload_keys(self) -> None:
        try:
            self._gw.reload_keys()
        except (OSError, ValueError) as exc:
            log.error(
                "key ring reload failed; the previous ring keeps serving",
                extra={"error": str(exc)},
            )

"""Change announcements on Redis: a generation hash plus pub/sub.

``{P:sync}:gen`` holds one counter per topic; ``P:sync`` is the channel. An
announcement bumps the counter and publishes the change with the new
generation, so a listener can tell a message it expected from one that came
after a gap. Redis Cluster's asyncio client has no pub/sub: there replicas rely
on the periodic re-check of the counters alone (every half second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import orjson
from redis.asyncio.cluster import RedisCluster

from gateway.store.changes import Change, ChangeFeed, Topic

if TYPE_CHECKING:
    from gateway.store.redis.core import RedisStore

__all__ = ["RedisChangeFeed"]

log = logging.getLogger("xinyi.store.changes")

_RESUBSCRIBE_S = 1.0


class RedisChangeFeed(ChangeFeed):
    def __init__(self, store: RedisStore, origin: str) -> None:
        self._store = store
        self._origin = origin
        self._k_gen = f"{{{store.prefix}:sync}}:gen"
        self._channel = f"{store.prefix}:sync"

    async def announce(self, topic: Topic, key: str = "") -> int:
        generation = int(await self._store.run("HINCRBY", self._k_gen, topic.value, 1))
        message = {"t": topic.value, "g": generation, "k": key, "o": self._origin}
        await self._store.run("PUBLISH", self._channel, orjson.dumps(message))
        return generation

    async def generations(self) -> dict[Topic, int]:
        raw = await self._store.run("HGETALL", self._k_gen)
        known = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in raw.items()}
        return {topic: known.get(topic.value, 0) for topic in Topic}

    async def listen(self) -> AsyncIterator[Change]:
        client = self._store.client
        if isinstance(client, RedisCluster):
            return
        while True:
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    change = _parse(message.get("data"))
                    if change is not None and change.origin != self._origin:
                        yield change
            except Exception as exc:  # redis-py's connection errors are not OSErrors
                # Redis went away: the periodic re-check covers the gap; subscribe again.
                log.warning("change feed lost its subscription", extra={"error": str(exc)})
            finally:
                with contextlib.suppress(Exception):  # closing a broken subscription
                    await pubsub.aclose()
            await asyncio.sleep(_RESUBSCRIBE_S)


def _parse(data: object) -> Change | None:
    try:
        raw = orjson.loads(data) if isinstance(data, bytes | str) else None
        if not isinstance(raw, dict):
            return None
        return Change(Topic(raw["t"]), int(raw["g"]), str(raw.get("k", "")), str(raw.get("o", "")))
    except (ValueError, KeyError, TypeError):
        log.warning("ignored a malformed change announcement")
        return None

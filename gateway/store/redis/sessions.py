"""Staff sessions in Redis: one key per session, expired by Redis itself."""

from __future__ import annotations

from gateway.store.redis.core import RedisStore
from gateway.ui.sessions import Session, SessionStore

__all__ = ["RedisSessions"]


class RedisSessions(SessionStore):
    def __init__(self, store: RedisStore) -> None:
        self._store = store

    async def open(self) -> None:
        return None  # keys need no preparation

    async def put(self, digest: str, session: Session, ttl_s: float) -> None:
        ttl_ms = max(1, int(ttl_s * 1000))
        await self._store.run(
            "SET", self._store.key("uisess", digest), session.to_json(), "PX", ttl_ms
        )

    async def get(self, digest: str) -> Session | None:
        raw = await self._store.run("GET", self._store.key("uisess", digest))
        return Session.from_json(raw) if raw is not None else None

    async def delete(self, digest: str) -> None:
        await self._store.run("DEL", self._store.key("uisess", digest))

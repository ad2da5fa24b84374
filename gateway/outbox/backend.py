"""The outbox store for a given state store backend."""

from __future__ import annotations

from gateway.outbox.store import OutboxStore
from gateway.store.base import Store

__all__ = ["outbox_store"]


def outbox_store(store: Store) -> OutboxStore:
    from gateway.store.embedded import EmbeddedStore

    if isinstance(store, EmbeddedStore):
        from gateway.store.embedded.outbox import EmbeddedOutbox

        return EmbeddedOutbox(store)
    from gateway.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from gateway.store.redis.outbox import RedisOutbox

        return RedisOutbox(store)
    raise TypeError(f"no outbox for a {type(store).__name__}")

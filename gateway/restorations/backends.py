"""The restorations store for a given shared store: same backend, same place."""

from __future__ import annotations

from gateway.restorations.store import RestorationStore
from gateway.store.base import Store
from gateway.store.embedded import EmbeddedStore

__all__ = ["restorations_for"]


def restorations_for(store: Store) -> RestorationStore:
    if isinstance(store, EmbeddedStore):
        from gateway.store.embedded.restorations import EmbeddedRestorations

        return EmbeddedRestorations(store)
    from gateway.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from gateway.store.redis.restorations import RedisRestorations

        return RedisRestorations(store)
    raise TypeError(f"no restorations store for {type(store).__name__}")

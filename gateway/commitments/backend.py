"""The commitments store for a given state store backend."""

from __future__ import annotations

from gateway.commitments.store import CommitmentStore
from gateway.store.base import Store

__all__ = ["commitment_store"]


def commitment_store(store: Store) -> CommitmentStore:
    from gateway.store.embedded import EmbeddedStore

    if isinstance(store, EmbeddedStore):
        from gateway.store.embedded.commitments import EmbeddedCommitments

        return EmbeddedCommitments(store)
    from gateway.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from gateway.store.redis.commitments import RedisCommitments

        return RedisCommitments(store)
    raise TypeError(f"no commitments store for a {type(store).__name__}")

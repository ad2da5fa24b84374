"""Signed-in staff sessions, kept in the shared store so every replica knows them.

The browser holds a random session id in an HttpOnly cookie; the store keeps
only its SHA-256, so a copy of the store holds no usable session. Each
session carries its own CSRF token (synchronizer pattern). A session ends at
sign-out, after ``idle`` without a request, or ``max_age`` after sign-in,
whichever comes first; the store forgets it by TTL.
"""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import orjson

from gateway.store.base import Store

__all__ = ["Session", "SessionStore", "new_session_id", "session_digest", "session_store"]


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    partner: str
    name: str
    csrf: str
    created: float  # epoch seconds
    expires: float  # absolute end: sign-in time plus the maximum age

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Session:
        return cls(**orjson.loads(raw))


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def session_digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore(ABC):
    """Sessions by the digest of their id. All methods may raise StoreUnavailable."""

    @abstractmethod
    async def open(self) -> None:
        """Prepare the backend (tables); idempotent."""

    @abstractmethod
    async def put(self, digest: str, session: Session, ttl_s: float) -> None:
        """Keep (or refresh) a session for ``ttl_s`` seconds."""

    @abstractmethod
    async def get(self, digest: str) -> Session | None:
        """The session while it lives."""

    @abstractmethod
    async def delete(self, digest: str) -> None: ...


def session_store(store: Store) -> SessionStore:
    """The session backend that matches the gateway's store."""
    from gateway.store.embedded import EmbeddedStore

    if isinstance(store, EmbeddedStore):
        from gateway.store.embedded.sessions import EmbeddedSessions

        return EmbeddedSessions(store)
    from gateway.store.redis import RedisStore

    if isinstance(store, RedisStore):
        from gateway.store.redis.sessions import RedisSessions

        return RedisSessions(store)
    raise TypeError(f"no session backend for {type(store).__name__}")

"""Auto-pipelining: every Redis command issued in one event-loop pass goes out together.

Requests that run concurrently each await their own command; the commands are
written together on the next loop callback, one write per connection, by the
lean connections of this package (hiredis packs and parses; no
redis-py objects per command). A single Redis gets one connection; a cluster
gets one per primary, each command routed by the hash slot of its first key.
A pipelined command costs the client a few microseconds instead of the tens
redis-py spends per request (DESIGN §11; BENCHMARKS.md, issue 17).

Connection failures surface as ``StoreUnavailable``; any other Redis error
reply (a redis-py ``ResponseError``) is a bug or a case the caller handles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from redis import exceptions as rex
from redis.asyncio.cluster import RedisCluster

from gateway.store.redis.lean.cluster import LeanCluster
from gateway.store.redis.lean.connection import LeanConnection, options_from_url

__all__ = ["UNAVAILABLE", "AutoPipeline"]

# Errors that mean "Redis cannot answer now", as opposed to "we sent something wrong".
UNAVAILABLE: tuple[type[Exception], ...] = (
    rex.ConnectionError,
    rex.TimeoutError,
    rex.BusyLoadingError,
    rex.ClusterDownError,
    rex.TryAgainError,
    rex.MasterDownError,
    rex.RedisClusterException,
    OSError,
)


class AutoPipeline:
    """The store's command path: ``execute`` one command, coalesced with its loop pass's.

    ``url`` names the server (credentials, db, TLS); for a cluster the slot map
    and the primaries come from redis-py's ``client``.
    """

    def __init__(
        self, url: str, client: Any, timeout_s: float = 2.0, connect_timeout_s: float = 2.0
    ) -> None:
        target: LeanConnection | LeanCluster
        if isinstance(client, RedisCluster):
            # Credentials from the cluster URL; each primary's address from the slot map.
            userinfo = urlsplit(url.replace("redis+cluster://", "redis://", 1)).netloc
            userinfo = userinfo.rpartition("@")[0]
            options = options_from_url(
                f"redis://{userinfo + '@' if userinfo else ''}127.0.0.1",
                timeout_s=timeout_s,
                connect_timeout_s=connect_timeout_s,
            )
            target = LeanCluster(client, options)
        else:
            options = options_from_url(
                url, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s
            )
            target = LeanConnection(options)
        self._target = target
        # The hot path calls the connection (or router) directly: no extra frame per command.
        self.execute: Callable[..., Awaitable[Any]] = target.execute

    async def close(self) -> None:
        await self._target.close()

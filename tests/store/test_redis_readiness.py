"""A Redis that answers but takes no writes is not ready (issue 14, item 1, for Redis).

PING alone said ready while every decision's audit append failed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.store.base import StoreUnavailable
from gateway.store.redis import RedisStore
from tests.redis_servers import redis_available, redis_server

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")


async def test_a_redis_that_refuses_writes_fails_the_check(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        store = RedisStore(server.url, prefix="ready", connect_timeout_s=5)
        await store.open()
        admin = Redis.from_url(server.url)
        try:
            await store.check()
            # A full memory with no eviction: reads answer, writes are refused.
            await admin.config_set("maxmemory-policy", "noeviction")
            await admin.config_set("maxmemory", "1")
            with pytest.raises(StoreUnavailable, match="audit log cannot be written"):
                await store.check()
            await admin.config_set("maxmemory", "0")
            await store.check()
        finally:
            await admin.aclose()
            await store.close()

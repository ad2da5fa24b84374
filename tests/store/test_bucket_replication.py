"""Rate-limit buckets stay out of the AOF (and off replicas); everything else does not.

``xinyi_admit`` and ``xinyi_rate`` write the bucket with ``redis.set_repl(REPL_NONE)``
(docs/redis.md): a bucket costs no fsync of its own under ``appendfsync always``.
The Idempotency-Key lock written in the same call must still be persisted, and a
Redis restarted from its AOF starts the partner with a full burst.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store.admission import IdempotencyClaim
from gateway.store.redis import RedisStore
from tests.redis_servers import redis_available, redis_server

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")

DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


def _aof(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*.aof")))


async def test_the_bucket_is_not_persisted_but_the_key_claim_is(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    claim = IdempotencyClaim("p:POST:/x:k1", "idem-lock:p:POST:/x:k1", 30)
    with redis_server(directory, *DURABLE) as server:
        store = RedisStore(server.url, prefix="repl", connect_timeout_s=5)
        await store.open()
        try:
            admitted = await store.admit("rl:p", 1.0, 2, idempotency=claim)
            assert admitted.claimed
            assert (await store.admit("rl:p", 1.0, 2)).wait_s == 0.0
            assert (await store.admit("rl:p", 1.0, 2)).wait_s > 0  # the burst is spent
            assert await store.rate_limit("rl:q", 1.0, 2) == 0.0
        finally:
            await store.close()
        aof = _aof(directory)
        assert b"idem-lock:p:POST:/x:k1" in aof
        assert b"repl:rl:{rl:p}" not in aof
        assert b"repl:rl:{rl:q}" not in aof
        # Restarted from the AOF: the claim held, the bucket is full again.
        server.kill()
        server.start()
        store = RedisStore(server.url, prefix="repl", connect_timeout_s=5)
        await store.open()
        try:
            assert not (await store.admit("rl:p", 1.0, 2, idempotency=claim)).claimed
            assert (await store.admit("rl:p", 1.0, 2)).wait_s == 0.0
        finally:
            await store.close()

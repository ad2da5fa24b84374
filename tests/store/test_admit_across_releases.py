"""``xinyi_admit`` across a rolling upgrade: replicas of two releases share one Redis.

The last replica to start loads its release's library. A reply keeps the
previous release's four members unless breaches were asked for, and a replica
asking for them of a library that does not read them reads them on its own
(``Admission.breaches`` is None, and the pipeline asks the commitments store).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import pytest

from gateway.commitments.backend import commitment_store
from gateway.store.admission import BreachRead
from gateway.store.redis import RedisStore
from tests.redis_servers import redis_available, redis_server

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RedisStore]:
    with redis_server(tmp_path / "redis") as server:
        backend = RedisStore(server.url, connect_timeout_s=5)
        await backend.open()
        yield backend
        await backend.close()


async def test_a_reply_without_breaches_keeps_the_previous_shape(store: RedisStore) -> None:
    reply = await store.fcall("xinyi_admit", [store.key("rl", "p")], [1000, 5, 0, 0, 0])
    assert len(reply) == 4  # what the previous release unpacks
    bucket = [store.key("rl", "q")]
    once = [10**9, 1, 0, 0, 0]  # one request in a thousand seconds: the second is limited
    assert len(await store.fcall("xinyi_admit", bucket, once)) == 4
    limited = await store.fcall("xinyi_admit", bucket, once)
    assert int(limited[0]) > 0
    assert len(limited) == 4


async def test_a_library_that_does_not_read_breaches_leaves_them_to_the_pipeline(
    store: RedisStore,
) -> None:
    commitments = commitment_store(store)
    asked = BreachRead("sk-1", dt.date(2026, 6, 1), commitments.breaches)
    assert (await store.admit("rl-a", 10.0, 5, breaches=asked)).breaches == []
    # The previous release's admit: nothing after the key's claim.
    source = resources.files("gateway.store").joinpath("xinyi.lua").read_text(encoding="utf-8")
    previous = source.replace("  if args[6] then\n", "  if false then\n", 1)
    assert previous != source
    await store.load_library(previous)
    assert (await store.admit("rl-b", 10.0, 5, breaches=asked)).breaches is None

"""A subject with more breaches than one Lua ``unpack`` can pass still gets them all.

``xinyi_admit`` reads the breached commitments' bodies with ``MGET`` in chunks:
one ``MGET`` of every name would overflow Lua's stack past a few thousand
(an error that would refuse every approval decision for that subject).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import orjson
import pytest

from gateway.commitments.backend import commitment_store
from gateway.store.admission import BreachRead
from gateway.store.redis import RedisStore
from gateway.store.redis.breaches import body_prefix, index_key
from tests.contract.test_admission_contract import TODAY, _breached
from tests.redis_servers import redis_available, redis_server

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")

MANY = 9_000  # above LUAI_MAXCSTACK (8,000), the most values one unpack() may return


async def test_thousands_of_breaches_come_back_whole(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as server:
        store = RedisStore(server.url, prefix="many", connect_timeout_s=5)
        await store.open()
        try:
            commitments = commitment_store(store)
            await commitments.open()
            subject = "sk-" + secrets.token_hex(4)
            first = await _breached(commitments, subject, TODAY)
            # The rest as copies of the first under new ids, written straight to
            # Redis: registering 9,000 through the service would take minutes.
            raw = await store.client.get(body_prefix(store.prefix) + first.commitment_id)
            template = orjson.loads(raw)
            bodies: dict[str, bytes] = {}
            scores: dict[str, int] = {}
            for n in range(1, MANY):
                cid = f"cmt_{n:06d}"
                bodies[body_prefix(store.prefix) + cid] = orjson.dumps(
                    {**template, "commitment_id": cid}
                )
                scores[cid] = TODAY.toordinal() + n
            await store.client.mset(bodies)
            await store.client.zadd(index_key(store.prefix, subject), scores)

            admitted = await store.admit(
                "rl-" + secrets.token_hex(4),
                10.0,
                5,
                breaches=BreachRead(subject, TODAY, commitments.breaches),
            )
            assert admitted.wait_s == 0.0
            assert admitted.breaches is not None
            assert len(admitted.breaches) == MANY
            assert admitted.breaches == await commitments.breaches(subject, TODAY)
        finally:
            await store.close()

"""A group-committed batch is written with one command per key, storing what one per record stored.

``xinyi_append`` and ``xinyi_tree_extend`` (gateway/store/xinyi.lua) gather a
batch's values per key: one ``RPUSH`` of the log, one ``MSET`` of the
decisions, one ``ZADD`` and one pruning ``ZREMRANGEBYSCORE`` per token index,
one ``SADD`` of the lists registry, one ``HSET`` per hash, one ``RPUSH`` per
subject index. Each write a function makes is its own AOF command, so fewer
of them is less for redis-server to run, propagate and rewrite. These tests pin
down the stored keys, values, orders and TTLs, and the command counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import orjson
import pytest

from gateway.audit.merkle import Frontier
from gateway.audit.store import TreeExtension
from gateway.store.base import DecisionWrite, IssuedToken, StatusRef
from gateway.store.redis import RedisStore
from gateway.store.redis.audit_tree import RedisAuditTree
from tests.contract.records import decision_write, issued_token
from tests.redis_servers import redis_available, redis_server

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed")

DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


async def _calls(store: RedisStore) -> dict[str, int]:
    info = await store.client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in info.items()}


def _tokened(n: int, ref: StatusRef, subject: str, kid: str, expires: int) -> DecisionWrite:
    token = issued_token(ref, subject, kid, expires)
    return decision_write(n, token, ref)


async def test_a_batch_stores_per_record_values_with_one_command_per_key(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis", *DURABLE) as server:
        store = RedisStore(server.url, prefix="batch", connect_timeout_s=5)
        await store.open()
        try:
            now = int(time.time())
            ref = [await store.allocate_status() for _ in range(3)]
            writes = [
                _tokened(0, ref[0], "subject-a", "kid-1", now + 3600),
                _tokened(1, ref[1], "subject-a", "kid-1", now - 30),  # already expired
                _tokened(2, ref[2], "subject-b", "kid-1", now + 600),
                dataclasses.replace(decision_write(3), idempotency=("p:POST:/x:k", "fp")),
                dataclasses.replace(decision_write(4), body=None),  # a record, not a decision
            ]
            await store.client.config_resetstat()
            # Submitted in one loop pass: one group commit, one FCALL.
            await asyncio.gather(*(store.record_decision(w) for w in writes))
            calls = await _calls(store)
            assert calls["fcall"] == 1
            # Per batch, not per record: the log, the decisions, the lists registry.
            assert (calls["rpush"], calls["mset"], calls["sadd"]) == (1, 1, 1)
            # One ZADD and one pruning per index key: ts:subject-a, ts:subject-b, tk:kid-1.
            assert (calls["zadd"], calls["zremrangebyscore"]) == (3, 3)
            # A SET per token (each has its own TTL), for the Idempotency-Key record and
            # for the marker of the record that is not a decision.
            assert calls["set"] == 5

            run = store.run
            log = [orjson.loads(r) for r in await run("LRANGE", store.audit_key("log"), 0, -1)]
            assert [r["seq"] for r in log] == [1, 2, 3, 4, 5]
            assert [r["entry"]["decision_id"] for r in log] == [w.decision_id for w in writes]
            marker = store.audit_key("d", writes[4].decision_id)
            assert await run("GET", marker) == b"1"
            assert 86400 - 5 <= await run("TTL", marker) <= 86400
            for w in writes[:4]:
                key = store.audit_key("d", w.decision_id)
                stored = orjson.loads(await run("GET", key))
                assert stored == {"partner": w.partner, "body": orjson.loads(w.body or b"")}
                assert await run("TTL", key) == -1
            tokens = [w.token for w in writes[:3]]
            assert all(isinstance(t, IssuedToken) for t in tokens)
            for t, lives in zip(tokens, (3600 + 60, 1 + 60, 600 + 60), strict=True):
                assert t is not None
                key = store.audit_key("t", t.jti)
                assert IssuedToken.from_dict(orjson.loads(await run("GET", key))) == t
                assert lives - 5 <= await run("TTL", key) <= lives
            jti = [t.jti.encode() for t in tokens if t is not None]

            async def index(kind: str, name: str) -> list[tuple[bytes, float]]:
                got = await run("ZRANGE", store.audit_key(kind, name), 0, -1, "WITHSCORES")
                return [(got[i], float(got[i + 1])) for i in range(0, len(got), 2)]

            # The expired token was indexed and pruned in the same call, as before.
            assert await index("ts", "subject-a") == [(jti[0], now + 3600.0)]
            assert await index("ts", "subject-b") == [(jti[2], now + 600.0)]
            assert await index("tk", "kid-1") == [(jti[2], now + 600.0), (jti[0], now + 3600.0)]
            assert await run("SMEMBERS", store.audit_key("lists")) == {ref[0].list_id.encode()}
            idem = store.audit_key("idem", "p:POST:/x:k")
            assert await store.get_idempotency("p:POST:/x:k") == writes[3].idempotency_record()
            assert await run("TTL", idem) > 0
            seq, _ = await run("HMGET", store.audit_key("head"), "seq", "hash")
            assert seq == b"5"
            # A retried batch (its reply lost) is recognised and writes nothing.
            before = await _calls(store)
            await store.record_decision(writes[0])
            after = await _calls(store)
            assert after["rpush"] == before["rpush"]
        finally:
            await store.close()


async def test_a_tree_step_writes_each_hash_and_subject_index_once(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as server:
        store = RedisStore(server.url, prefix="tree", connect_timeout_s=5)
        await store.open()
        try:
            tree = RedisAuditTree(store)
            nodes = [(8, 0, b"\x01" * 32), (9, 0, b"\x02" * 32)]
            step = TreeExtension(
                0,
                Frontier(3, [b"\x03" * 32, b"\x04" * 32]),
                nodes,
                [("dec-1", 1), ("dec-2", 2), ("dec-3", 3)],
                [("subject-a", 1), ("subject-b", 2), ("subject-a", 3)],
            )
            await store.client.config_resetstat()
            assert await tree.extend_tree(step)
            calls = await _calls(store)
            # nodes, decision index, tree; one RPUSH per subject, seqs in order.
            assert (calls["hset"], calls["rpush"]) == (3, 2)
            assert await tree.node(8, 0) == b"\x01" * 32
            assert await tree.node(9, 0) == b"\x02" * 32
            assert [await tree.decision_seq(f"dec-{i}") for i in (1, 2, 3)] == [1, 2, 3]
            sx = store.audit_key("sx", "subject-a")
            assert await store.run("LRANGE", sx, 0, -1) == [b"1", b"3"]
            assert await tree.subject_seqs({"subject-a", "subject-b"}) == [1, 2, 3]
            state = await tree.tree_state()
            assert (state.size, state.hashes) == (3, step.frontier.hashes)
            # A step from a stale size is refused and writes nothing.
            assert not await tree.extend_tree(step)
        finally:
            await store.close()

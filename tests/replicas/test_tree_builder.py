"""One tree builder among replicas (issue 17): only the lease holder extends the audit tree.

Two replicas here are two ``RedisStore`` connections with an ``AuditLog`` each,
background loops running, on a real redis-server and a real 3-master cluster
(the same key prefix, as two gateway processes would share it). Their tree
stores are the real Redis ones, counting the steps their builders try. Both
replicas append decisions; only the lease holder's builder may have tried a
step, and the checkpoints both replicas see verify. Then the holder dies: it
is cut off from Redis (its tree store's calls fail as with a lost
connection), so it cannot give the lease up, and the other replica takes the
tree over once the lease lapses.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.audit.lease import LEASE_S
from gateway.audit.log import AuditLog
from gateway.audit.store import TreeExtension
from gateway.audit.verify import verify_log
from gateway.store.base import StoreUnavailable
from gateway.store.redis import RedisStore
from gateway.store.redis.audit_tree import RedisAuditTree
from gateway.tokens.keys import KeyRing
from tests.contract.records import decision_write
from tests.redis_servers import cluster_url

pytestmark = pytest.mark.slow

ORIGIN = "test.example/audit"
SECONDS = 1.0  # checkpoint_seconds: the builder passes every 0.5 s


class CountedTree(RedisAuditTree):
    """The Redis tree store, counting the steps this replica tried and those that applied;
    once ``cut_off``, its lease and tree calls fail as they would without a connection."""

    def __init__(self, store: RedisStore) -> None:
        super().__init__(store)
        self.tried = 0
        self.applied = 0
        self.cut_off = False

    def _reach(self) -> None:
        if self.cut_off:
            raise StoreUnavailable("Redis is unavailable: ConnectionError")

    async def extend_tree(self, step: TreeExtension) -> bool:
        self._reach()
        self.tried += 1
        done = await super().extend_tree(step)
        self.applied += done
        return done

    async def take_builder_lease(self, holder: str, ttl_ms: int) -> bool:
        self._reach()
        return await super().take_builder_lease(holder, ttl_ms)

    async def release_builder_lease(self, holder: str) -> None:
        self._reach()
        await super().release_builder_lease(holder)


@dataclass
class TreeReplica:
    store: RedisStore
    tree: CountedTree
    log: AuditLog


@pytest.fixture(params=["redis", "redis_cluster"])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("replica_redis").url)
    return cluster_url(request.getfixturevalue("replica_cluster"))


@pytest.fixture
async def replicas(
    store_url: str, tmp_path: Path
) -> AsyncIterator[tuple[TreeReplica, TreeReplica]]:
    ring = KeyRing.load(tmp_path / "keys", create=True)
    prefix = "t" + secrets.token_hex(4)
    made: list[TreeReplica] = []
    try:
        for _ in range(2):
            store = RedisStore(store_url, prefix=prefix, connect_timeout_s=10)
            await store.open()
            tree = CountedTree(store)
            log = AuditLog(store, tree, lambda: ring, origin=ORIGIN, every=25, seconds=SECONDS)
            await log.open()
            made.append(TreeReplica(store, tree, log))
        for replica in made:
            replica.log.start()
        yield made[0], made[1]
    finally:
        for replica in made:
            await replica.log.close()
            await replica.store.close()


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float) -> float:
    """Seconds until ``check`` holds (polled); fails the test after ``timeout_s``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"not reached in {timeout_s} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _append(replica: TreeReplica, numbers: range) -> None:
    for n in numbers:
        await replica.store.record_decision(decision_write(n))


def _signed_at(replica: TreeReplica, size: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        latest = await replica.log.tree.latest_checkpoint()
        return latest is not None and latest[0] == size

    return check


async def _verified(replica: TreeReplica, records: int) -> None:
    result = await verify_log(replica.log, ORIGIN, replica.log.public_keys())
    assert result.ok, result
    assert result.records == records
    assert result.checkpoints >= 1


async def test_only_the_lease_holder_builds_and_the_other_takes_over_when_it_dies(
    replicas: tuple[TreeReplica, TreeReplica],
) -> None:
    a, b = replicas
    # Both replicas append, in bursts spread over several builder passes.
    for burst in range(3):
        base = burst * 20
        await asyncio.gather(
            _append(a, range(base, base + 10)), _append(b, range(base + 10, base + 20))
        )
        await asyncio.sleep(0.4)
    await _until(_signed_at(a, 60), timeout_s=15)

    assert a.log.lease.held != b.log.lease.held
    holder, other = (a, b) if a.log.lease.held else (b, a)
    assert holder.tree.tried > 0
    assert holder.tree.applied == holder.tree.tried  # nobody else raced it
    assert other.tree.tried == 0  # the other replica never read the log to build
    # Both see the same signed checkpoints, and each verifies the whole log.
    assert await other.log.tree.latest_checkpoint() == await holder.log.tree.latest_checkpoint()
    await _verified(other, 60)
    await _verified(holder, 60)

    # An explicit call works on the replica without the lease: it extends the tree itself.
    await _append(other, range(60, 65))
    size, note = await other.log.checkpoint_now()
    assert size == 65
    assert await holder.log.tree.checkpoint(65) == note

    # The holder dies: cut off from Redis, it cannot give the lease up, which lapses.
    holder.tree.cut_off = True
    await holder.log.close()
    lease = await holder.store.run("GET", holder.store.audit_key("builder"))
    assert lease == holder.log.lease.holder.encode()
    died = time.monotonic()
    await _append(other, range(65, 95))
    tried = other.tree.tried
    took = await _until(_signed_at(other, 95), timeout_s=LEASE_S + 15)
    assert other.log.lease.held
    assert other.tree.tried > tried
    # Taken over within the lease's lifetime, a renewal interval and one pass (and
    # slack for a busy machine); a failover of a few seconds, not a stalled tree.
    assert time.monotonic() - died < LEASE_S + 1.0 + 0.5 + 5.0, took
    await _verified(other, 95)

"""Redis dies under load and comes back: the gateway answers 503, never loses a decision.

One ``serve --demo`` gateway runs on a Redis with an fsync-always append-only
file. Sixteen clients post decisions (every demo subject in every scene) for
LOAD_S seconds; at KILL_AT the redis-server gets SIGKILL, at RESTART_AT it is
started again on the same port and directory. The gateway is not restarted.

What must hold: every answer is 200 or a 503 problem (dependency_unavailable,
with Retry-After); decisions succeed before the kill and again after the
restart; every decision answered 200 has its audit record afterwards; and
``audit verify`` passes over the whole chain.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.fault.load import Sample, decision_worker, monotonic_clock
from tests.redis_servers import RedisServer, redis_available, redis_server
from tests.replicas.conftest import (
    DemoData,
    Replica,
    audit_verify,
    demo_replica,
    read_audit,
    request,
)

pytestmark = pytest.mark.slow

WORKERS = 16
LOAD_S = 8.0
KILL_AT = 2.0
RESTART_AT = 4.0
SETTLED_AFTER_S = 2.0  # by then every answer should be a 200 again


@dataclass
class Outage:
    killed_at: float = -1.0
    restarted_at: float = -1.0


@dataclass
class FaultSetup:
    server: RedisServer
    gateway: Replica
    demo: DemoData


@pytest.fixture
def fault_setup(tmp_path: Path) -> Iterator[FaultSetup]:
    if not redis_available():
        pytest.skip("redis-server is not installed")
    redis_dir = tmp_path / "redis"
    with (
        redis_server(redis_dir, "--appendonly", "yes", "--appendfsync", "always") as server,
        demo_replica(
            tmp_path / "state", server.url, rate=100_000, extra=("--no-access-log",)
        ) as gateway,
    ):
        yield FaultSetup(server, gateway, DemoData.load(tmp_path / "state"))


async def _load(setup: FaultSetup, outage: Outage) -> list[Sample]:
    samples: list[Sample] = []
    clock = monotonic_clock()

    async def break_redis() -> None:
        await asyncio.sleep(KILL_AT - clock())
        await asyncio.to_thread(setup.server.kill, signal.SIGKILL)
        outage.killed_at = clock()
        await asyncio.sleep(max(0.0, RESTART_AT - clock()))
        await asyncio.to_thread(setup.server.start)  # same port, same directory
        outage.restarted_at = clock()

    timeout = aiohttp.ClientTimeout(total=15)
    connector = aiohttp.TCPConnector(limit=WORKERS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        workers = [
            decision_worker(
                session,
                setup.gateway.base,
                setup.demo,
                setup.demo.combos(),
                samples,
                clock,
                until=lambda: clock() >= LOAD_S,
                seed=n,
            )
            for n in range(WORKERS)
        ]
        await asyncio.wait_for(asyncio.gather(break_redis(), *workers), timeout=LOAD_S + 40)
    return samples


async def test_redis_killed_under_load_then_restarted(fault_setup: FaultSetup) -> None:
    outage = Outage()
    samples = await _load(fault_setup, outage)
    killed, restarted = outage.killed_at, outage.restarted_at
    assert 0 < killed < restarted, outage

    ok = [s for s in samples if s.status == 200]
    unavailable = [s for s in samples if s.status == 503]
    before = [s for s in ok if s.ended < killed]
    during = [s for s in unavailable if killed <= s.started < restarted]
    after = [s for s in ok if s.started >= restarted]
    recovery = min(s.ended for s in after) - restarted if after else float("inf")
    settled = [s for s in samples if s.started >= restarted + SETTLED_AFTER_S]
    summary = (
        f"{len(samples)} requests: {len(ok)} x 200, {len(unavailable)} x 503 "
        f"({len(during)} started while Redis was down); killed at {killed:.2f} s, "
        f"back at {restarted:.2f} s, first 200 after it {recovery:.3f} s later; "
        f"other: {sorted({(s.status, s.code, s.failure) for s in samples} - {(200, None, None)})}"
    )
    print(summary)

    # Only 200 and 503: no other 5xx, no dropped connection, no 4xx.
    others = [s for s in samples if s.status not in (200, 503)]
    assert not others, (summary, others[:5])
    for s in unavailable:
        assert s.content_type.startswith("application/problem+json"), s
        assert s.code == "dependency_unavailable", s
        assert s.retry_after is not None, s
        assert int(s.retry_after) >= 1, s
    assert before, summary
    assert during, summary
    assert after, summary
    # Recovered without restarting the gateway: once Redis is back, decisions flow again,
    # and keep flowing (a pooled connection left over from before the crash must not
    # fail a request later on).
    assert settled, summary
    late = [(round(s.started, 3), round(s.ended, 3), s.status) for s in settled if s.status != 200]
    assert not late, (summary, late[:20], fault_setup.gateway.log_tail(3000))
    # The same process, ready again: nobody restarted the gateway.
    assert fault_setup.gateway.alive(), fault_setup.gateway.log_tail()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        ready = await request(session, "GET", fault_setup.gateway.base + "/readyz")
    assert ready.status == 200, ready.body

    # Every decision answered 200 was durable: it has its audit record after the crash.
    records = await read_audit(fault_setup.server.url)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    # Records that are not decisions (the seeded consents) carry a kind.
    recorded = {r.entry["decision_id"] for r in records if "kind" not in r.entry}
    answered = [s.decision_id for s in ok]
    assert None not in answered
    assert len(set(answered)) == len(answered)
    missing = set(answered) - recorded
    assert not missing, (summary, len(missing), sorted(missing)[:5])
    # A record without a 200 is a write whose reply the crash lost: never more than the 503s.
    print(f"audit: {len(records)} records, {len(recorded) - len(answered)} without a 200")
    assert len(recorded) - len(answered) <= len(unavailable), summary

    code, output = await audit_verify(fault_setup.server.url)
    assert code == 0, output
    assert f"audit chain intact: {len(records)} records" in output, output

    log = fault_setup.gateway.log.read_text(encoding="utf-8", errors="replace")
    assert "unhandled error" not in log, log[-4000:]

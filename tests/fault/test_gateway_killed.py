"""A gateway gets SIGKILL under load and is started again on the same store.

``serve --demo`` runs on the embedded store (SQLite, WAL, synchronous=FULL) or
on a Redis with an fsync-always append-only file. WORKERS clients post
decisions; at KILL_AT the gateway process gets SIGKILL (no shutdown of any
kind runs). It is then started again on the same state directory and store,
and answers decisions again.

What must hold: every decision a client received (a 200 with its decision_id),
before the kill and after the restart, has its audit record; the records are
numbered without a gap; ``xinyi-gateway audit verify`` finds the chain intact.
A request the kill cut off (no answer) may or may not have its record: the
client never learnt the decision either way.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.fault.load import Sample, audit_decision_ids, decision_worker, monotonic_clock
from tests.redis_servers import redis_available, redis_server
from tests.replicas.conftest import (
    SCENE_PARTNER,
    DemoData,
    Replica,
    audit_verify,
    demo_replica,
    request,
)

pytestmark = pytest.mark.slow

WORKERS = 8
KILL_AT = 2.0
LOAD_LIMIT_S = 30.0  # the load stops at the kill; this only bounds a hung run


@contextmanager
def store_for(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "embedded":
        yield f"sqlite:///{(tmp_path / 'state' / 'state.sqlite3').resolve()}"
        return
    if not redis_available():
        pytest.skip("redis-server is not installed")
    with redis_server(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always") as srv:
        yield srv.url


async def _load_until_killed(gateway: Replica, demo: DemoData) -> tuple[list[Sample], float]:
    samples: list[Sample] = []
    clock = monotonic_clock()
    killed_at = -1.0

    async def kill() -> None:
        nonlocal killed_at
        await asyncio.sleep(KILL_AT)
        os.kill(gateway.process.pid, signal.SIGKILL)  # by pid: only the process we started
        await asyncio.to_thread(gateway.process.wait, 10)
        killed_at = clock()

    def stop() -> bool:
        return killed_at >= 0 or clock() > LOAD_LIMIT_S

    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=aiohttp.TCPConnector(limit=WORKERS)
    ) as session:
        workers = [
            decision_worker(
                session, gateway.base, demo, demo.combos(), samples, clock, until=stop, seed=n
            )
            for n in range(WORKERS)
        ]
        await asyncio.wait_for(asyncio.gather(kill(), *workers), timeout=LOAD_LIMIT_S + 15)
    return samples, killed_at


async def _one_per_scene(gateway: Replica, demo: DemoData) -> list[str]:
    """One decision in each scene from the restarted gateway: its decision ids."""
    ids = []
    firsts = {scene: subject for subject, scene in reversed(demo.combos())}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for scene, subject in sorted(firsts.items()):
            answer = await request(
                session,
                "POST",
                f"{gateway.base}/v1/scenes/{scene}/decisions",
                json=demo.body(subject, scene),
                headers=demo.auth(SCENE_PARTNER[scene]),
            )
            assert answer.status == 200, answer.body
            ids.append(str(answer.json()["decision_id"]))
    return ids


@pytest.mark.parametrize("backend", ["embedded", "redis"])
async def test_gateway_killed_under_load_then_restarted(tmp_path: Path, backend: str) -> None:
    state = tmp_path / "state"
    with ExitStack() as stack:
        store_url = stack.enter_context(store_for(backend, tmp_path))
        with demo_replica(state, store_url, rate=100_000, extra=("--no-access-log",)) as gateway:
            samples, killed_at = await _load_until_killed(gateway, DemoData.load(state))
            assert not gateway.alive()
            log = gateway.log_tail(100_000)
        with demo_replica(
            state, store_url, rate=100_000, name="restarted", extra=("--no-access-log",)
        ) as again:
            # --demo makes fresh API keys on every start: read them again.
            after = await _one_per_scene(again, DemoData.load(state))
            again_log = again.log_tail(100_000)
        records, recorded = await audit_decision_ids(store_url)
        code, verified = await audit_verify(store_url)

    ok = [s for s in samples if s.status == 200]
    cut = [s for s in samples if s.status == 0]
    summary = (
        f"{backend}: {len(samples)} requests, {len(ok)} x 200, {len(cut)} cut off by the kill "
        f"at {killed_at:.2f} s; {len(after)} decisions after the restart; "
        f"{len(records)} audit records"
    )
    print(summary)
    assert killed_at > 0, summary
    assert len(ok) >= WORKERS, summary  # it was under load when it died
    # Before the kill every request got its decision; the kill only cut requests off.
    assert not [s for s in samples if s.status not in (0, 200)], summary
    assert all(s.ended >= KILL_AT for s in cut), summary

    # Every decision a client received, before the kill and after the restart, was audited.
    received = [s.decision_id for s in ok] + after
    assert None not in received
    assert len(set(received)) == len(received), summary
    missing = set(received) - recorded
    assert not missing, (summary, sorted(missing)[:5])
    # A record nobody received is a decision the kill cut off before its answer went out.
    assert len(recorded) - len(received) <= len(cut), summary
    assert [r.seq for r in records] == list(range(1, len(records) + 1)), summary

    assert code == 0, verified
    assert f"audit chain intact: {len(records)} records" in verified, verified
    assert "unhandled error" not in log + again_log, (log + again_log)[-4000:]
